#!/usr/bin/env bash
# Example: launch an app guest under SEV-SNP with QEMU (host side, QEMU >= 9.1, a SNP-enabled
# host kernel and an AmdSev OVMF build). The guest's identity enters its SNP evidence through:
#   - the launch measurement (OVMF + kernel + initrd + cmdline with kernel-hashes=on), which
#     governance registers:   snpkms measure ... | snpkms gov add-os-image --measurement -
#   - host_data = SHA-256("snpkms/app/v1" || app_id || compose_hash), which the measured guest
#     OS checks against the compose it is asked to run:   snpkms app host-data --app .. --compose ..
#
# Usage: deploy/launch-guest-qemu.sh APP_ID COMPOSE_FILE
set -euo pipefail

APP_ID=${1:?app id (0x...)}
COMPOSE=${2:?compose file}
OVMF=${OVMF:-/usr/share/ovmf/OVMF.amdsev.fd}
KERNEL=${KERNEL:-./guest/vmlinuz}
INITRD=${INITRD:-./guest/initrd.img}
CMDLINE=${CMDLINE:-"console=ttyS0 root=/dev/vda1 ro"}
VCPUS=${VCPUS:-4}
MEMORY=${MEMORY:-8G}

HOST_DATA_HEX=$(snpkms app host-data --app "$APP_ID" --compose "$COMPOSE")
# QEMU takes host-data as base64 of the 32 raw bytes.
HOST_DATA_B64=$(printf '%s' "$HOST_DATA_HEX" | xxd -r -p | base64 -w0)

echo "expected launch measurement:"
snpkms measure --ovmf "$OVMF" --kernel "$KERNEL" --initrd "$INITRD" --append "$CMDLINE" \
    --vcpus "$VCPUS" --vcpu-type EPYC-v4
echo "host_data: $HOST_DATA_HEX"

exec qemu-system-x86_64 \
    -enable-kvm -machine q35,confidential-guest-support=sev0,memory-backend=ram1 \
    -cpu EPYC-v4 -smp "$VCPUS" -m "$MEMORY" \
    -object memory-backend-memfd,id=ram1,size="$MEMORY",share=true,prealloc=false \
    -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,host-data="$HOST_DATA_B64",policy=0x30000 \
    -bios "$OVMF" -kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" \
    -drive if=virtio,format=qcow2,file=./guest/disk.qcow2 \
    -netdev user,id=net0 -device virtio-net-pci,netdev=net0 \
    -nographic
