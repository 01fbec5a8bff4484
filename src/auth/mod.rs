//! Authentication and authorization: who the caller is ([`Principal`]) and what it may do
//! ([`Permission`], [`PermissionSet`]).

pub mod api_key;
pub mod permissions;
pub mod principal;

pub use permissions::{Operation, Permission, PermissionSet, UnknownPermission};
pub use principal::Principal;
