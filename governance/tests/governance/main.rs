//! Governance tools against real anvil nodes with the registry deployed from the committed
//! artifacts. One test binary (modules below) so alloy is linked once.

mod audit;
mod owner;
