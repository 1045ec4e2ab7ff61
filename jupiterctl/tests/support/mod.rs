//! Helpers shared by the integration tests of `jupiterctl`.

pub mod netns;
