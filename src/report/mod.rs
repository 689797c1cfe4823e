//! Reports: everything that reads the results store and prints, exports or plots it.

pub mod compare;
pub mod gate;
pub mod history;
pub mod junit;
pub mod plot;
pub mod show;
pub mod table;
