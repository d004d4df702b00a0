//! trackly-converter
