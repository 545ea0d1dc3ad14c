//! kopf-rs: placeholder
