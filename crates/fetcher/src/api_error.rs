//! What the API says when it refuses a request: the documented error body, read tolerantly.
//!
//! Trackly documents `{"error": "<human text>", "code": "<machine code>"}`: `error` always,
//! `code` on most answers (the 403 `Account is suspended` has none), sometimes a third field
//! `message`. Older pages and proxies in front of the API answer in other shapes, so these are
//! read too: `{"error": {"code": .., "message": ..}}` and Django REST Framework's
//! `{"detail": ".."}`. Anything else (an HTML page from a proxy) is no [`ApiError`]; callers
//! then quote the start of the body.

use std::fmt;

use serde::Deserialize;

/// The API's own account of an error, as its body states it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiError {
    /// The machine-readable code (`invalid_api_key`, `internal_error`, ...), when given.
    pub code: Option<String>,
    /// The human-readable text (`error`, or `detail`), when given.
    pub error: Option<String>,
    /// A further explanation some answers add in `message`.
    pub message: Option<String>,
}

impl ApiError {
    /// Reads an error body; `None` when it is not JSON of a known error shape or says nothing.
    pub fn parse(body: &[u8]) -> Option<ApiError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Plain(String),
            Nested {
                code: Option<String>,
                message: Option<String>,
            },
        }
        #[derive(Deserialize)]
        struct Body {
            error: Option<Text>,
            code: Option<String>,
            message: Option<String>,
            detail: Option<String>,
        }
        let body: Body = serde_json::from_slice(body).ok()?;
        let nonempty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let (error, code, message) = match body.error {
            Some(Text::Plain(text)) => (Some(text), body.code, body.message),
            Some(Text::Nested { code, message }) => (message, code.or(body.code), body.message),
            None => (body.detail, body.code, body.message),
        };
        let found = ApiError {
            code: nonempty(code),
            error: nonempty(error),
            message: nonempty(message),
        };
        (found.code.is_some() || found.error.is_some() || found.message.is_some()).then_some(found)
    }

    /// What to switch on, as the documentation advises: the code when present, else the text.
    pub fn key(&self) -> &str {
        self.code
            .as_deref()
            .or(self.error.as_deref())
            .or(self.message.as_deref())
            .unwrap_or_default()
    }
}

impl fmt::Display for ApiError {
    /// `invalid_api_key: Invalid API key`, or the text alone when there is no code, plus the
    /// `message` when it adds something. Quoted as the API wrote it (truncated when long).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::with_capacity(3);
        if let Some(code) = &self.code {
            parts.push(clip(code));
        }
        for text in [&self.error, &self.message].into_iter().flatten() {
            if Some(text) != self.code.as_ref() {
                parts.push(clip(text));
            }
        }
        match parts.split_first() {
            Some((first, rest)) if self.code.is_some() && !rest.is_empty() => {
                write!(f, "{first}: {}", rest.join(" — "))
            }
            _ => f.write_str(&parts.join(" — ")),
        }
    }
}

/// An answer is quoted, not pasted: one line, at most 200 characters.
fn clip(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> ApiError {
        ApiError::parse(body.as_bytes()).expect(body)
    }

    #[test]
    fn the_documented_body_gives_code_and_text() {
        let e = parse(r#"{"error": "Invalid API key", "code": "invalid_api_key"}"#);
        assert_eq!(e.code.as_deref(), Some("invalid_api_key"));
        assert_eq!(e.to_string(), "invalid_api_key: Invalid API key");
        assert_eq!(e.key(), "invalid_api_key");
    }

    #[test]
    fn an_answer_without_code_is_named_by_its_text() {
        let e = parse(r#"{"error": "Account is suspended"}"#);
        assert_eq!(e.code, None);
        assert_eq!(e.to_string(), "Account is suspended");
        assert_eq!(e.key(), "Account is suspended");
    }

    #[test]
    fn a_third_field_message_is_kept() {
        let e = parse(
            r#"{"error": "Invalid parameter", "code": "invalid_parameter", "message": "per_page must be at most 1000"}"#,
        );
        assert_eq!(
            e.to_string(),
            "invalid_parameter: Invalid parameter — per_page must be at most 1000"
        );
    }

    #[test]
    fn nested_and_django_shapes_are_read_too() {
        let e = parse(
            r#"{"error": {"code": "unauthorized", "message": "Missing or invalid X-Api-Key header."}}"#,
        );
        assert_eq!(
            e.to_string(),
            "unauthorized: Missing or invalid X-Api-Key header."
        );
        assert_eq!(
            parse(r#"{"detail": "Invalid page."}"#).to_string(),
            "Invalid page."
        );
    }

    #[test]
    fn other_bodies_are_no_api_error() {
        for body in [
            "<html>502 Bad Gateway</html>",
            "",
            "[]",
            "{}",
            r#"{"error": ""}"#,
            "null",
        ] {
            assert_eq!(ApiError::parse(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn long_texts_are_clipped_to_one_line() {
        let long = format!(r#"{{"error": "a\nb {}"}}"#, "x".repeat(500));
        let shown = parse(&long).to_string();
        assert!(shown.starts_with("a b "));
        assert!(shown.chars().count() <= 201, "{shown}");
    }
}
