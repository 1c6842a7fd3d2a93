//! Malformed OVMF images and impossible inputs: each is refused with its own typed error, and no
//! corruption of the parsed region makes `compute` panic.

mod support;

use snpkms_measure::{compute, KernelHashes, MeasureError, MeasureInput, VcpuType, Vmm};
use support::*;

fn input(ovmf: &[u8]) -> MeasureInput<'_> {
    MeasureInput {
        ovmf,
        kernel: None,
        vcpus: 2,
        vcpu_type: Some("EPYC-v4".parse().expect("known type")),
        guest_features: 0x1,
        vmm: Vmm::Qemu,
    }
}

fn measure(bytes: &[u8]) -> Result<[u8; 48], MeasureError> {
    compute(&input(bytes))
}

fn with_kernel(bytes: &[u8]) -> Result<[u8; 48], MeasureError> {
    compute(&MeasureInput {
        kernel: Some(KernelHashes::new(
            b"kernel",
            Some(b"initrd"),
            Some("console=ttyS0"),
        )),
        ..input(bytes)
    })
}

fn put_u16(bytes: &mut [u8], at: usize, v: u16) {
    bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn the_synthetic_image_measures() {
    let built = Image::amd_sev().build();
    measure(&built.bytes).expect("no kernel");
    with_kernel(&built.bytes).expect("with kernel");
}

#[test]
fn truncated_image() {
    for len in [0, 1, 49] {
        let err = measure(&vec![0u8; len]).unwrap_err();
        assert_eq!(err, MeasureError::OvmfTruncated { len, min: 50 });
    }
    // Cut short by a partial download: no longer whole pages.
    let built = Image::amd_sev().build();
    let cut = &built.bytes[..built.bytes.len() - 100];
    assert!(matches!(measure(cut), Err(MeasureError::OvmfSize { .. })));
    // Cut at a page boundary: the footer is gone.
    let cut = &built.bytes[..built.bytes.len() - 4096];
    assert!(matches!(measure(cut), Err(MeasureError::FooterGuid { .. })));
}

#[test]
fn bad_footer_guid() {
    let mut built = Image::amd_sev().build();
    built.bytes[built.footer_at + 2] ^= 0xff;
    let err = measure(&built.bytes).unwrap_err();
    assert!(matches!(err, MeasureError::FooterGuid { .. }), "{err:?}");
    assert!(err.to_string().contains(FOOTER), "{err}");
}

#[test]
fn footer_table_length_out_of_bounds() {
    let mut built = Image::amd_sev().build();
    put_u16(&mut built.bytes, built.footer_at, 17);
    assert!(matches!(
        measure(&built.bytes),
        Err(MeasureError::FooterSize { size: 17, .. })
    ));

    // Claims more bytes than the 8 KiB image holds before the footer.
    let mut built = Image {
        size: 8192,
        ..Image::amd_sev()
    }
    .build();
    put_u16(&mut built.bytes, built.footer_at, 0xffff);
    assert!(matches!(
        measure(&built.bytes),
        Err(MeasureError::FooterSize { size: 0xffff, .. })
    ));
}

#[test]
fn table_entry_length_out_of_bounds() {
    for bad in [0u16, 17, 0xffff] {
        let mut built = Image::amd_sev().build();
        let at = built.entry_header(SEV_ES_RESET_BLOCK);
        put_u16(&mut built.bytes, at, bad);
        let err = measure(&built.bytes).unwrap_err();
        match &err {
            MeasureError::TableEntryLength { guid, size, .. } => {
                assert_eq!(guid, SEV_ES_RESET_BLOCK);
                assert_eq!(*size, bad);
            }
            other => panic!("length {bad}: {other:?}"),
        }
    }
}

#[test]
fn table_with_trailing_bytes() {
    let mut built = Image::amd_sev().build();
    // Grow the footer's claimed table by 5 bytes that hold no entry.
    let footer = u16::from_le_bytes([
        built.bytes[built.footer_at],
        built.bytes[built.footer_at + 1],
    ]);
    put_u16(&mut built.bytes, built.footer_at, footer + 5);
    assert_eq!(
        measure(&built.bytes),
        Err(MeasureError::TableTrailing { left: 5 })
    );
}

#[test]
fn duplicate_table_entry() {
    let mut image = Image::amd_sev();
    image
        .extra
        .push((SEV_ES_RESET_BLOCK, 0x0080_c004_u32.to_le_bytes().to_vec()));
    let err = measure(&image.build().bytes).unwrap_err();
    assert_eq!(
        err,
        MeasureError::DuplicateTableEntry {
            guid: SEV_ES_RESET_BLOCK.into()
        }
    );
}

#[test]
fn missing_or_short_reset_block() {
    let image = Image {
        reset_eip: None,
        ..Image::amd_sev()
    };
    assert!(matches!(
        measure(&image.build().bytes),
        Err(MeasureError::TableEntryMissing {
            name: "SEV-ES reset block",
            ..
        })
    ));

    let mut image = Image {
        reset_eip: None,
        ..Image::amd_sev()
    };
    image.extra.push((SEV_ES_RESET_BLOCK, vec![4, 0xb0]));
    assert_eq!(
        measure(&image.build().bytes),
        Err(MeasureError::TableEntryTooShort {
            name: "SEV-ES reset block",
            len: 2,
            need: 4
        })
    );
}

#[test]
fn missing_sev_metadata() {
    let image = Image {
        sections: None,
        ..Image::amd_sev()
    };
    let err = measure(&image.build().bytes).unwrap_err();
    assert!(matches!(err, MeasureError::NoSevMetadata { .. }), "{err:?}");
    assert!(err.to_string().contains("QEMU refuses"), "{err}");
}

#[test]
fn metadata_offset_out_of_range() {
    for offset in [0u32, 15, 512 * 1024 + 1, u32::MAX] {
        let mut built = Image::amd_sev().build();
        let at = built.entry_header(SEV_METADATA) - 4;
        put_u32(&mut built.bytes, at, offset);
        assert_eq!(
            measure(&built.bytes),
            Err(MeasureError::MetadataOffset {
                offset,
                len: 512 * 1024
            }),
            "offset {offset:#x}"
        );
    }
}

#[test]
fn bad_metadata_header() {
    let mut built = Image::amd_sev().build();
    let at = built.metadata_at.expect("metadata");
    built.bytes[at] = b'X';
    assert_eq!(
        measure(&built.bytes),
        Err(MeasureError::MetadataSignature { found: *b"XSEV" })
    );

    let mut built = Image::amd_sev().build();
    put_u32(&mut built.bytes, at + 8, 2);
    assert_eq!(
        measure(&built.bytes),
        Err(MeasureError::MetadataVersion { version: 2 })
    );

    // More items than the header length covers, then a length past the end of the image.
    let mut built = Image::amd_sev().build();
    put_u32(&mut built.bytes, at + 12, 8);
    assert!(matches!(
        measure(&built.bytes),
        Err(MeasureError::MetadataLength { num_items: 8, .. })
    ));
    let mut built = Image::amd_sev().build();
    put_u32(&mut built.bytes, at + 12, u32::MAX);
    put_u32(&mut built.bytes, at + 4, u32::MAX);
    assert!(matches!(
        measure(&built.bytes),
        Err(MeasureError::MetadataLength { .. })
    ));
}

#[test]
fn unsupported_section_type() {
    let mut image = Image::amd_sev();
    if let Some(sections) = image.sections.as_mut() {
        sections[3].2 = 5;
    }
    let err = measure(&image.build().bytes).unwrap_err();
    assert_eq!(
        err,
        MeasureError::UnsupportedSectionType {
            index: 3,
            section_type: 5
        }
    );
    assert!(err.to_string().contains("unsupported type 0x5"), "{err}");
}

#[test]
fn misaligned_or_oddly_sized_sections() {
    let mut image = Image::amd_sev();
    if let Some(sections) = image.sections.as_mut() {
        sections[0].0 += 0x10;
    }
    assert!(matches!(
        measure(&image.build().bytes),
        Err(MeasureError::SectionMisaligned {
            index: 0,
            kind: "SNP_SEC_MEM",
            ..
        })
    ));

    let mut image = Image::amd_sev();
    if let Some(sections) = image.sections.as_mut() {
        sections[0].1 = 0x1800;
    }
    assert!(matches!(
        measure(&image.build().bytes),
        Err(MeasureError::SectionSize { index: 0, .. })
    ));

    let mut image = Image::amd_sev();
    if let Some(sections) = image.sections.as_mut() {
        sections[2].1 = 0x2000; // two secrets pages
    }
    assert!(matches!(
        measure(&image.build().bytes),
        Err(MeasureError::SectionSize {
            index: 2,
            kind: "SNP_SECRETS",
            ..
        })
    ));
}

#[test]
fn kernel_without_kernel_hashes_section() {
    let mut image = Image::amd_sev();
    if let Some(sections) = image.sections.as_mut() {
        sections.retain(|s| s.2 != KERNEL_HASHES);
    }
    let built = image.build();
    measure(&built.bytes).expect("fine without a kernel");
    let err = with_kernel(&built.bytes).unwrap_err();
    assert_eq!(err, MeasureError::MissingKernelHashesSection);
    assert!(err.to_string().contains("SNP_KERNEL_HASHES"), "{err}");
}

#[test]
fn kernel_with_unusable_hash_table_area() {
    let cases: [(Option<(u32, u32)>, &str); 5] = [
        (None, "no entry"),
        (Some((0, 0x400)), "zero base"),
        (Some((0x0081_0c00, 0x80)), "too small"),
        (Some((0x0080_dc00, 0x400)), "outside the section"),
        (Some((0x0081_0fc0, 0x400)), "crosses the page end"),
    ];
    for (area, what) in cases {
        let image = Image {
            hash_table: area,
            ..Image::amd_sev()
        };
        let built = image.build();
        measure(&built.bytes).unwrap_or_else(|e| panic!("{what}: no kernel, no check: {e}"));
        let err = with_kernel(&built.bytes).unwrap_err();
        match (area, &err) {
            (None, MeasureError::TableEntryMissing { .. }) => {}
            (Some(_), MeasureError::HashTableArea { .. }) => {}
            _ => panic!("{what}: {err:?}"),
        }
    }
}

#[test]
fn unknown_vcpu_type_and_vmm() {
    let err = "EPYC-Zen9".parse::<VcpuType>().unwrap_err();
    assert!(matches!(err, MeasureError::UnknownVcpuType { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("\"EPYC-Zen9\"") && msg.contains("EPYC-Milan"),
        "{msg}"
    );
    assert_eq!(
        "hyperv".parse::<Vmm>(),
        Err(MeasureError::UnknownVmm {
            name: "hyperv".into()
        })
    );
}

#[test]
fn impossible_launch_parameters() {
    let built = Image::amd_sev().build();
    let base = input(&built.bytes);
    let cases = [
        (
            MeasureInput {
                vcpus: 0,
                ..base.clone()
            },
            MeasureError::NoVcpus,
        ),
        (
            MeasureInput {
                guest_features: 0x20,
                ..base.clone()
            },
            MeasureError::SnpNotActive { features: 0x20 },
        ),
        (
            MeasureInput {
                vcpu_type: None,
                ..base.clone()
            },
            MeasureError::MissingVcpuType,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(compute(&input), Err(want));
    }
    // EC2 and GCE do not put the vCPU signature in the VMSA, so they need no type.
    for vmm in [Vmm::Ec2, Vmm::Gce] {
        compute(&MeasureInput {
            vcpu_type: None,
            vmm,
            ..base.clone()
        })
        .expect("cloud VMMs need no vCPU type");
    }
}

#[test]
fn ap_reset_address_zero_allows_one_vcpu_only() {
    let image = Image {
        reset_eip: Some(0),
        ..Image::amd_sev()
    };
    let built = image.build();
    let one = MeasureInput {
        vcpus: 1,
        ..input(&built.bytes)
    };
    compute(&one).expect("BSP only");
    assert_eq!(
        compute(&MeasureInput { vcpus: 3, ..one }),
        Err(MeasureError::NoApResetAddress { vcpus: 3 })
    );
}

#[test]
fn no_corruption_of_the_parsed_region_panics() {
    // A small image keeps this fast; the footer table and metadata sit in its last ~400 bytes.
    let built = Image {
        size: 16 * 4096,
        ..Image::amd_sev()
    }
    .build();
    let metadata_at = built.metadata_at.expect("metadata");
    // A section size of gigabytes is valid, only slow to measure (a million zero pages), so
    // the top bytes of the section sizes only get small values.
    let sections = Image::amd_sev().sections.map_or(0, |s| s.len());
    let size_top_bytes: Vec<usize> = (0..sections)
        .flat_map(|i| [2, 3].map(|b| metadata_at + 16 + 12 * i + 4 + b))
        .collect();
    let kernel = Some(KernelHashes::new(b"k", None, None));
    for at in metadata_at - 16..built.bytes.len() {
        let values: &[u8] = if size_top_bytes.contains(&at) {
            &[0x00, 0x01]
        } else {
            &[0x00, 0x01, 0x10, 0x7f, 0xff]
        };
        for &value in values {
            let mut bytes = built.bytes.clone();
            bytes[at] = value;
            let _ = measure(&bytes);
            let _ = compute(&MeasureInput {
                kernel,
                ..input(&bytes)
            });
        }
    }
    // Every truncation of the tail, page-aligned or not.
    for cut in (0..built.bytes.len()).step_by(97) {
        let _ = measure(&built.bytes[..cut]);
        let _ = measure(&built.bytes[cut..]);
    }
}
