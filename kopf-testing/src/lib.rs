//! kopf-testing: placeholder
