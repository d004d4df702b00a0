//! trackly-export
