//! The live cluster (`Builder::live`): bootstrap objects, controllers, simulated kubelets and Nodes,
//! on the fake's clock. Each test states the live-cluster behaviour it pins.

mod client;
