//! The one test store of the workspace: it passes everything to a real store (in memory, a
//! local disk, an emulator), records the operations that change it, and fails those a test
//! names. The converter's tests pin down publication order and rollback with it; the root
//! tests (which include this file by path) break a publication half-way on each emulator.
//!
//! A fault's needle is matched against the operation as `"put path"`, `"delete path"`,
//! `"multipart path"`, `"copy from -> to"` or `"rename from -> to"`; the log records
//! `"op path"`, the path being the one the operation changes (a copy's or rename's target).
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How [`FaultyStore`] renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rename {
    /// The inner store's rename (atomic on a local file system).
    Native,
    /// A copy to a new object, then a delete of the source, each through the faults, as on S3.
    CopyThenDelete,
}

#[derive(Debug)]
struct Fault {
    needle: String,
    /// Failures left; `None` fails for ever.
    left: Option<usize>,
}

/// What the store's hooks share with the streams they hand out.
#[derive(Debug, Default)]
struct Faults {
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<String>>,
    fired: AtomicBool,
}

impl Faults {
    /// Fails `op` (its full description) if a fault's needle is in it; records it otherwise.
    fn check(&self, verb: &str, from: Option<&Path>, target: &Path) -> Result<()> {
        let op = match from {
            Some(from) => format!("{verb} {from} -> {target}"),
            None => format!("{verb} {target}"),
        };
        {
            let mut faults = self.faults.lock().unwrap();
            if let Some(fault) = faults
                .iter_mut()
                .find(|f| f.left != Some(0) && op.contains(&f.needle))
            {
                if let Some(left) = &mut fault.left {
                    *left -= 1;
                }
                self.fired.store(true, Ordering::SeqCst);
                return Err(object_store::Error::Generic {
                    store: "faulty",
                    source: format!("injected failure on {op}").into(),
                });
            }
        }
        self.log.lock().unwrap().push(format!("{verb} {target}"));
        Ok(())
    }
}

/// See the [module docs](self).
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    rename: Rename,
    faults: Arc<Faults>,
}

impl FaultyStore {
    /// Over `inner`, renaming with `inner`'s own rename.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Self::with_rename(inner, Rename::Native)
    }

    /// Over `inner`, renaming as `rename` says.
    pub fn with_rename(inner: Arc<dyn ObjectStore>, rename: Rename) -> Arc<Self> {
        Arc::new(FaultyStore {
            inner,
            rename,
            faults: Arc::default(),
        })
    }

    /// Over a fresh in-memory store.
    pub fn in_memory() -> Arc<Self> {
        Self::new(Arc::new(InMemory::new()))
    }

    /// Fails the first operation whose description contains `needle`, once.
    pub fn fail_on(&self, needle: &str) {
        self.fail(needle, Some(1));
    }

    /// Fails the next `times` operations whose description contains `needle`.
    pub fn fail_times(&self, needle: &str, times: usize) {
        self.fail(needle, Some(times));
    }

    /// Fails every operation whose description contains `needle`.
    pub fn fail_always(&self, needle: &str) {
        self.fail(needle, None);
    }

    fn fail(&self, needle: &str, left: Option<usize>) {
        self.faults.faults.lock().unwrap().push(Fault {
            needle: needle.to_owned(),
            left,
        });
    }

    /// Whether a fault has fired.
    pub fn failed(&self) -> bool {
        self.faults.fired.load(Ordering::SeqCst)
    }

    /// The operations that went through, in order, as `"op path"`.
    pub fn log(&self) -> Vec<String> {
        self.faults.log.lock().unwrap().clone()
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl ObjectStore for FaultyStore {
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
            self.faults.check("put", None, location)?;
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
            self.faults.check("multipart", None, location)?;
            self.inner.put_multipart_opts(location, opts).await
        })
    }

    fn get_opts<'a, 'b, 'c>(&'a self, location: &'b Path, options: GetOptions) -> Fut<'c, GetResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.inner.get_opts(location, options)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = Arc::clone(&self.inner);
        let faults = Arc::clone(&self.faults);
        locations
            .then(move |location| {
                let inner = Arc::clone(&inner);
                let faults = Arc::clone(&faults);
                async move {
                    let location = location?;
                    faults.check("delete", None, &location)?;
                    inner.delete(&location).await?;
                    Ok(location)
                }
            })
            .boxed()
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
        self.inner.list_with_delimiter(prefix)
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
            self.faults.check("copy", Some(from), to)?;
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
            self.faults.check("rename", Some(from), to)?;
            match self.rename {
                Rename::Native => self.inner.rename_opts(from, to, options).await,
                Rename::CopyThenDelete => {
                    // A new object, as an S3 copy makes (a local copy would hard-link).
                    self.faults.check("copy", Some(from), to)?;
                    let bytes = self.inner.get(from).await?.bytes().await?;
                    self.inner.put(to, bytes.into()).await?;
                    self.delete(from).await
                }
            }
        })
    }
}
