//! A threshold deployment on loopback: n KMS nodes on the simulator (each its own chip) run the
//! key generation against each other over gRPC, governance checks their outputs and records the
//! share set, and the nodes start serving GetAppKeyShare.

use crate::node_config;
use snpkms_chain_client::{Address, B256};
use snpkms_guest::threshold::{NodeAnswer, ShareSet};
use snpkms_guest::GuestClient;
use snpkms_kms_node::config::NodeConfig;
use snpkms_kms_node::{CheckedGroup, KeyGenOutput, KeyGenPlan, RunningNode, SecuritySettings};
use snpkms_platform::Attestor;
use snpkms_testkit::{deploy_fixture, Fixture};
use std::collections::BTreeMap;
use std::time::Duration;

/// A free loopback port (bound and released: the node binds it again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// n participants' configurations, each its own chip and data dir.
pub struct Participants {
    pub configs: Vec<NodeConfig>,
    pub dirs: Vec<tempfile::TempDir>,
    /// Each participant's deadline.
    pub timeout: Duration,
}

impl Participants {
    /// `n` nodes of `fixture`'s registry with the fixture's KMS image; each node's
    /// configuration digest allowed on-chain.
    pub async fn new(fixture: &Fixture, n: u16) -> Participants {
        let mut configs = Vec::new();
        let mut dirs = Vec::new();
        for i in 1..=n {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cfg = node_config(
                &fixture.chain.url,
                fixture.deployment.registry,
                dir.path(),
                &format!("e2e-threshold-chip-{i}"),
            );
            cfg.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let digest = SecuritySettings::resolve(&cfg).unwrap().digest();
            // The participants share one digest (their configurations differ only in what is
            // outside it), which an earlier set of participants may have allowed already.
            match fixture.governor.add_kms_config(B256::from(digest.0)).await {
                Ok(_) => {}
                Err(e) if e.to_string().contains("AlreadyPresent") => {}
                Err(e) => panic!("addKmsConfig: {e}"),
            }
            configs.push(cfg);
            dirs.push(dir);
        }
        Participants {
            configs,
            dirs,
            timeout: Duration::from_secs(60),
        }
    }

    /// Participant `i`'s (1-based) plan for `session` with threshold `t`.
    pub fn plan(&self, session: [u8; 32], i: u16, t: u16) -> KeyGenPlan {
        KeyGenPlan {
            session,
            index: i,
            threshold: t,
            peers: (1..=self.configs.len() as u16)
                .filter(|j| *j != i)
                .map(|j| {
                    (
                        j,
                        format!("http://{}", self.configs[usize::from(j) - 1].listen),
                    )
                })
                .collect(),
            timeout: self.timeout,
        }
    }

    /// Every participant's key generation at once, each with its configuration (as changed by
    /// `change(i, cfg)`); the results by index.
    pub async fn keygen_with(
        &self,
        t: u16,
        change: impl Fn(u16, &mut NodeConfig),
    ) -> Vec<Result<KeyGenOutput, String>> {
        let all: Vec<u16> = (1..=self.configs.len() as u16).collect();
        self.keygen_of(&all, t, change).await
    }

    /// The key generation of the participants `running` only (the others never start, so
    /// their ports stay closed); the results in the order of `running`.
    pub async fn keygen_of(
        &self,
        running: &[u16],
        t: u16,
        change: impl Fn(u16, &mut NodeConfig),
    ) -> Vec<Result<KeyGenOutput, String>> {
        let session: [u8; 32] = rand_session();
        let mut tasks = Vec::new();
        for &i in running {
            let mut cfg = self.configs[usize::from(i) - 1].clone();
            change(i, &mut cfg);
            let plan = self.plan(session, i, t);
            tasks.push(tokio::spawn(async move {
                snpkms_kms_node::keygen(&cfg, &plan)
                    .await
                    .map_err(|e| e.to_string())
            }));
        }
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("keygen task"));
        }
        out
    }
}

fn rand_session() -> [u8; 32] {
    rand::random()
}

/// A running threshold deployment.
pub struct ThresholdStack {
    pub fixture: Fixture,
    pub participants: Participants,
    pub outputs: Vec<KeyGenOutput>,
    pub group: CheckedGroup,
    /// Node i at `nodes[i - 1]`, `None` when stopped.
    pub nodes: Vec<Option<RunningNode>>,
    pub compose_hash: [u8; 32],
}

impl ThresholdStack {
    /// The fixture with simulated guests allowed, `n` nodes' key generation with threshold `t`,
    /// the outputs checked and recorded, every node started and serving.
    pub async fn start(n: u16, t: u16) -> ThresholdStack {
        let fixture = deploy_fixture().await;
        crate::allow_simulated_guests(&fixture).await;
        let participants = Participants::new(&fixture, n).await;
        let outputs: Vec<KeyGenOutput> = participants
            .keygen_with(t, |_, _| {})
            .await
            .into_iter()
            .map(|r| r.expect("key generation"))
            .collect();
        let verifier = SecuritySettings::resolve(&participants.configs[0])
            .unwrap()
            .verifier();
        let group = snpkms_kms_node::check_keygen(&outputs, &verifier, now())
            .expect("the outputs are one share set");
        let nodes: Vec<(u16, Vec<u8>, Address)> = group
            .members
            .iter()
            .map(|m| (m.index, m.verifying_share.to_vec(), Address::from(m.signer)))
            .collect();
        fixture
            .governor
            .set_threshold_group(group.threshold, &group.group_key, &nodes)
            .await
            .expect("setThresholdGroup");
        let mut stack = ThresholdStack {
            fixture,
            participants,
            outputs,
            group,
            nodes: Vec::new(),
            compose_hash: snpkms_testkit::COMPOSE_HASH,
        };
        for i in 1..=n {
            let node = stack.start_node(i).await;
            stack.nodes.push(Some(node));
        }
        stack
    }

    /// Starts node `i` (1-based) on its store and waits until it serves.
    pub async fn start_node(&self, i: u16) -> RunningNode {
        let cfg = self.participants.configs[usize::from(i) - 1].clone();
        let node = snpkms_kms_node::start(cfg).await.expect("start node");
        for _ in 0..200 {
            if node.node.state().serving.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            node.node.state().serving.is_ok(),
            "node {i} not serving: {:?}",
            node.node.state().serving
        );
        node
    }

    /// Stops node `i` (1-based).
    pub async fn stop_node(&mut self, i: u16) {
        if let Some(node) = self.nodes[usize::from(i) - 1].take() {
            node.stop().await.expect("stop");
        }
    }

    /// Node `i`'s URL (1-based).
    pub fn url(&self, i: u16) -> String {
        format!(
            "http://{}",
            self.participants.configs[usize::from(i) - 1].listen
        )
    }

    /// The share set as a guest reads it from the chain.
    pub async fn share_set(&self) -> ShareSet {
        let chain = snpkms_chain_client::ChainClient::connect(self.fixture.config())
            .await
            .expect("chain");
        let group = chain.threshold_group().await.expect("thresholdGroup");
        let nodes: Vec<(u16, Vec<u8>, [u8; 20])> = group
            .nodes
            .iter()
            .map(|n| (n.index, n.verifying_share.clone(), n.signer.0 .0))
            .collect();
        ShareSet::new(group.share_epoch, group.threshold, &group.group_key, &nodes)
            .expect("the recorded share set")
    }

    /// Asks nodes `which` (1-based) for their partials of the fixture's app, with one
    /// ephemeral key.
    pub async fn ask(
        &self,
        guest: &dyn Attestor,
        which: &[u16],
        ephemeral: &snpkms_api::seal::EphemeralKeyPair,
    ) -> Vec<NodeAnswer> {
        let mut answers = Vec::new();
        for i in which {
            let url = self.url(*i);
            answers.push(match GuestClient::connect(&url).await {
                Ok(mut c) => {
                    c.get_app_key_share(
                        guest,
                        self.fixture.app.0 .0,
                        self.compose_hash,
                        None,
                        ephemeral,
                    )
                    .await
                }
                Err(e) => NodeAnswer {
                    node: url,
                    nonce: Vec::new(),
                    result: Err(e.to_string()),
                },
            });
        }
        answers
    }
}

/// Now, for the verifier.
pub fn now() -> snpkms_verifier::UnixTime {
    snpkms_verifier::UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

/// Every participant's (1-based) index by its output, to look one up.
pub fn by_index(outputs: &[KeyGenOutput]) -> BTreeMap<u16, &KeyGenOutput> {
    outputs.iter().map(|o| (o.index, o)).collect()
}
