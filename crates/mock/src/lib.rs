//! trackly-mock
