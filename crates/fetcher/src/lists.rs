//! `GET /v2/lists`: every sending list, deleted ones included, as the JSON text of each list
//! for a decoder to read, read until two complete reads agree.
//!
//! The documentation shows `{"lists": [...]}` without a `pagination` block and says that the
//! default answer leaves out deleted lists (`status=deleted` asks for them). So one complete
//! read of the lists is two listings, each paged through only when its answer carries a
//! `pagination` block (at the documented maximum of 100 per page for list endpoints). Reading
//! one answer is [`ListsPage::parse`], in `trackly-contacts`.
//!
//! Why one read is never trusted alone is in [`Client::lists`]; lists the contacts name but the
//! reads left out are read by id ([`Client::lists_by_id`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use trackly_contacts::ListsPage;

use crate::admission::Admission;
use crate::client::Client;
use crate::error::FetchError;
use crate::stats::StatsHandle;

/// Lists per page asked for: the documented maximum of the list endpoints other than contacts.
pub const LISTS_PER_PAGE: u32 = 100;

/// Complete reads of the lists before a listing that changes under every read is an error.
pub const MAX_LIST_READS: u32 = 5;

/// Pages one listing may take before the API is taken not to honour `page` (10,000 lists per
/// account is the mock's and, as far as documented, any account's order of magnitude).
const MAX_LISTS_PAGES: u64 = 1_000;

/// One complete read of the lists: both listings, every page.
struct ListsRead {
    pages: Vec<ListsPage>,
    /// The ids read, both listings together.
    ids: BTreeSet<i64>,
    /// Why a paged listing was not consistent, if it was not.
    unsteady: Option<String>,
}

/// One listing (the default or `status=deleted`), paged through.
struct Listing {
    pages: Vec<ListsPage>,
    unsteady: Option<String>,
}

impl Client {
    /// Every list, deleted ones included: the default listing and `status=deleted`, each paged
    /// through when its answers carry a `pagination` block, read completely again until two
    /// reads in a row hold the same list ids and every paged listing is consistent (its pages
    /// report one `total`, and that many distinct lists came back). A list restored between
    /// the two requests of a read is in neither answer, and a list created or deleted while a
    /// paged listing is read shifts the others by one place: so one read is never trusted
    /// alone. Lists that change under [`MAX_LIST_READS`] reads in a row are
    /// [`FetchError::UnstableLists`]. A list that flips in step with the requests escapes
    /// both reads; [`Client::lists_by_id`] reads them by id, for the `list_id`s of the contacts.
    ///
    /// Retries and errors are those of contact pages; requests are counted in `stats`. A list
    /// deleted between the two listings of the read returned appears in both answers, active
    /// in the first and deleted in the second.
    pub async fn lists(&self, stats: &StatsHandle) -> Result<Vec<ListsPage>, FetchError> {
        let admission = Admission::new(1, self.inner.max_rps);
        let mut previous: Option<BTreeSet<i64>> = None;
        let mut why = String::new();
        for read in 1..=MAX_LIST_READS {
            if read > 2 {
                stats.update(|s| s.list_rereads += 1);
                tracing::info!(
                    read,
                    "the lists changed while they were read; reading them again: {why}"
                );
            }
            let this = self.read_lists(&admission, stats).await?;
            if let Some(unsteady) = this.unsteady {
                why = unsteady;
                previous = None;
                continue;
            }
            match previous {
                Some(before) if before == this.ids => return Ok(this.pages),
                Some(before) => why = describe_change(&before, &this.ids),
                None => {}
            }
            previous = Some(this.ids);
        }
        Err(FetchError::UnstableLists {
            reads: MAX_LIST_READS,
            reason: why,
        })
    }

    /// The lists with these ids, one `GET /v2/lists/{id}` each, one at a time under the
    /// client's request rate: the answers found, and the ids the API answered 404 for. Counted
    /// in `stats` ([`FetchStats::lists_by_id`](crate::FetchStats::lists_by_id),
    /// [`lists_unknown`](crate::FetchStats::lists_unknown)).
    pub async fn lists_by_id(
        &self,
        ids: &[i64],
        stats: &StatsHandle,
    ) -> Result<(Vec<ListsPage>, Vec<i64>), FetchError> {
        let admission = Admission::new(1, self.inner.max_rps);
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for &id in ids {
            match self.list(id, &admission, stats).await? {
                Some(page) => found.push(page),
                None => unknown.push(id),
            }
        }
        Ok((found, unknown))
    }

    /// One list by id: `None` when the API answers 404.
    async fn list(
        &self,
        id: i64,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<Option<ListsPage>, FetchError> {
        let url = self.list_url(id);
        let source = format!("GET /v2/lists/{id}");
        let got = self
            .get(url, 1, admission, stats, move |body| {
                ListsPage::parse_one(source.clone(), body)
            })
            .await;
        stats.update(|s| s.list_pages += 1);
        match got {
            Ok(page) if page.ids().next() == Some(Some(id)) => {
                stats.update(|s| s.lists_by_id += 1);
                Ok(Some(page))
            }
            Ok(page) => Err(FetchError::Rejected {
                page: 1,
                status: 200,
                url: self.list_url(id),
                api: None,
                body: format!(
                    "asked for list {id} but the answer is list {}",
                    page.ids()
                        .next()
                        .flatten()
                        .map_or("without an id".into(), |i| i.to_string())
                ),
            }),
            Err(FetchError::Rejected { status: 404, .. }) => {
                stats.update(|s| s.lists_unknown += 1);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn read_lists(
        &self,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<ListsRead, FetchError> {
        let active = self.listing(None, admission, stats).await?;
        let deleted = self.listing(Some("deleted"), admission, stats).await?;
        let pages: Vec<ListsPage> = active.pages.into_iter().chain(deleted.pages).collect();
        let ids = pages.iter().flat_map(ListsPage::ids).flatten().collect();
        Ok(ListsRead {
            pages,
            ids,
            unsteady: active.unsteady.or(deleted.unsteady),
        })
    }

    async fn listing(
        &self,
        status: Option<&str>,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<Listing, FetchError> {
        let mut pages = Vec::new();
        let mut totals = BTreeSet::new();
        let mut page = 1u64;
        loop {
            let url = self.lists_url(status, page, LISTS_PER_PAGE);
            let source = match status {
                Some(status) => format!("GET /v2/lists?status={status}, page {page}"),
                None => format!("GET /v2/lists, page {page}"),
            };
            let (answer, pagination) = self
                .get(url, page, admission, stats, move |body| {
                    ListsPage::parse(source.clone(), body)
                })
                .await?;
            pages.push(answer);
            stats.update(|s| s.list_pages += 1);
            let Some(pagination) = pagination else {
                return Ok(Listing {
                    pages,
                    unsteady: None,
                });
            };
            if pagination.page.is_some_and(|p| p != page) {
                return Err(self.lists_rejected(
                    status,
                    page,
                    format!(
                        "asked for page {page} of the lists but the answer says page {}",
                        pagination.page.unwrap_or(0)
                    ),
                ));
            }
            totals.insert(pagination.total.unwrap_or(0));
            let last = pages.last().map_or(0, ListsPage::len);
            // Without `total_pages`, an empty page ends the lists.
            if pagination.total_pages.is_some_and(|t| page >= t) || last == 0 {
                let unsteady = unsteady(status, &pages, &totals);
                return Ok(Listing { pages, unsteady });
            }
            if page >= MAX_LISTS_PAGES {
                return Err(self.lists_rejected(
                    status,
                    page,
                    format!(
                        "the lists answer claims {} pages; more than {MAX_LISTS_PAGES} is taken as an API that ignores `page`",
                        pagination.total_pages.unwrap_or(page)
                    ),
                ));
            }
            page += 1;
        }
    }

    fn lists_rejected(&self, status: Option<&str>, page: u64, body: String) -> FetchError {
        FetchError::Rejected {
            page,
            status: 200,
            url: self.lists_url(status, page, LISTS_PER_PAGE),
            api: None,
            body,
        }
    }
}

/// Why a paged listing is not one consistent read, if it is not: its pages reported different
/// totals, or it held another number of distinct lists than the total.
fn unsteady(status: Option<&str>, pages: &[ListsPage], totals: &BTreeSet<u64>) -> Option<String> {
    let listing = status.map_or("the default listing".to_owned(), |s| {
        format!("the status={s} listing")
    });
    if totals.len() > 1 {
        let totals: Vec<String> = totals.iter().map(u64::to_string).collect();
        return Some(format!(
            "{listing}'s pages reported totals {}",
            totals.join(", ")
        ));
    }
    let total = totals.first().copied()?;
    let distinct: BTreeSet<i64> = pages.iter().flat_map(ListsPage::ids).flatten().collect();
    let without_id = pages
        .iter()
        .flat_map(ListsPage::ids)
        .filter(Option::is_none)
        .count();
    let read = (distinct.len() + without_id) as u64;
    (read != total)
        .then(|| format!("{listing} reported {total} lists and {read} distinct ones were read"))
}

/// What changed between two reads, for messages: a few ids that appeared or disappeared.
fn describe_change(before: &BTreeSet<i64>, after: &BTreeSet<i64>) -> String {
    let ids = |set: Vec<&i64>| {
        let shown: Vec<String> = set.iter().take(5).map(|id| id.to_string()).collect();
        let more = set.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    let gone: Vec<&i64> = before.difference(after).collect();
    let new: Vec<&i64> = after.difference(before).collect();
    match (gone.is_empty(), new.is_empty()) {
        (false, false) => format!(
            "lists {} were read before but not again, lists {} only now",
            ids(gone),
            ids(new)
        ),
        (false, true) => format!("lists {} were read before but not again", ids(gone)),
        _ => format!("lists {} were read only now", ids(new)),
    }
}
