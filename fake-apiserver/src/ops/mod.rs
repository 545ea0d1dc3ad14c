//! The operations of the core, as `impl State` blocks: reads (get, list, watch), writes (create,
//! update, patch, subresources) and deletion with the built-in controllers that follow it.

pub(crate) mod admit;
mod apply;
mod binding;
mod delete;
pub(crate) mod read;
pub(crate) mod write;
