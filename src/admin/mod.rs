//! Instance administration pages (`/admin`, admins only): user management (list, search, create,
//! role, disable, approve pending registrations) and the instance settings. The rules live with
//! the features they change (`accounts::rules`, `instance::rules`); this module is only pages.

pub mod routes;
