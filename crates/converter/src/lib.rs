//! trackly-converter (docs written below once the API settles)
pub mod decode;
mod error;
pub mod schema;

pub use decode::{ContactDecoder, DecoderOptions, InvalidPolicy, Reject};
pub use error::{ConvertError, Result};
