//! Making problems from real code: `new` copies a working repository and detects its layout,
//! `inject` puts bugs into it that its tests catch. Both leave a problem `validate` accepts
//! (after `inject`).

pub mod inject;
pub mod new;
