//! The operator's commands that are not about one direction of mail:
//! candidates by hand, `config check`.

mod candidates;
mod config_check;
mod documents;
