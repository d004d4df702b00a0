//! An in-memory object store that records the order of mutating operations and can be told to
//! fail one of them, to pin down publication order and clean-up.
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Records `put`, `rename`, `delete` (and multipart starts) as `"op path"` strings.
#[derive(Debug, Default)]
pub struct RecordingStore {
    inner: InMemory,
    log: Mutex<Vec<String>>,
    /// Fail the first operation whose `"op path"` contains this text.
    fail_on: Mutex<Option<String>>,
}

impl RecordingStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn fail_on(&self, needle: &str) {
        *self.fail_on.lock().unwrap() = Some(needle.to_owned());
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn record(&self, op: &str, path: &Path) -> Result<()> {
        let entry = format!("{op} {path}");
        let mut fail = self.fail_on.lock().unwrap();
        if fail.as_deref().is_some_and(|n| entry.contains(n)) {
            *fail = None;
            return Err(object_store::Error::Generic {
                store: "recording",
                source: format!("injected failure on {entry}").into(),
            });
        }
        self.log.lock().unwrap().push(entry);
        Ok(())
    }
}

impl fmt::Display for RecordingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordingStore")
    }
}

impl ObjectStore for RecordingStore {
    fn put_opts<'a, 'b, 'c>(
        &'a self,
        location: &'b Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Fut<'c, PutResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.record("put", location)?;
            self.inner.put_opts(location, payload, opts).await
        })
    }

    fn put_multipart_opts<'a, 'b, 'c>(
        &'a self,
        location: &'b Path,
        opts: PutMultipartOptions,
    ) -> Fut<'c, Box<dyn MultipartUpload>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.record("multipart", location)?;
            self.inner.put_multipart_opts(location, opts).await
        })
    }

    fn get_opts<'a, 'b, 'c>(&'a self, location: &'b Path, options: GetOptions) -> Fut<'c, GetResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(self.inner.get_opts(location, options))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        use futures::StreamExt;
        let paths: Vec<Result<Path>> = futures::executor::block_on(locations.collect());
        let mut checked = Vec::new();
        for path in paths {
            checked.push(path.and_then(|p| self.record("delete", &p).map(|()| p)));
        }
        let (ok, err): (Vec<_>, Vec<_>) = checked.into_iter().partition(|r| r.is_ok());
        let ok: Vec<Path> = ok.into_iter().map(|r| r.unwrap()).collect();
        let inner = self
            .inner
            .delete_stream(futures::stream::iter(ok.into_iter().map(Ok)).boxed());
        inner.chain(futures::stream::iter(err)).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_delimiter<'a, 'b, 'c>(&'a self, prefix: Option<&'b Path>) -> Fut<'c, ListResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(self.inner.list_with_delimiter(prefix))
    }

    fn copy_opts<'a, 'b, 'd, 'c>(
        &'a self,
        from: &'b Path,
        to: &'d Path,
        options: CopyOptions,
    ) -> Fut<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        'd: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.record("copy", to)?;
            self.inner.copy_opts(from, to, options).await
        })
    }

    fn rename_opts<'a, 'b, 'd, 'c>(
        &'a self,
        from: &'b Path,
        to: &'d Path,
        options: RenameOptions,
    ) -> Fut<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        'd: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            self.record("rename", to)?;
            self.inner.rename_opts(from, to, options).await
        })
    }
}
