//! `GET /v2/lists`: every sending list, deleted ones included, as the JSON text of each list
//! for a decoder to read.
//!
//! The documentation shows `{"lists": [...]}` without a `pagination` block and says that the
//! default answer leaves out deleted lists (`status=deleted` asks for them). So [`Client::lists`]
//! makes two requests, and pages through either of them only when its answer carries a
//! `pagination` block (at the documented maximum of 100 per page for list endpoints). Reading
//! one answer is [`ListsPage::parse`], in `trackly-contacts`.

use std::sync::Arc;

use trackly_contacts::ListsPage;

use crate::client::Client;
use crate::error::FetchError;
use crate::limit::Admission;
use crate::stats::StatsHandle;

/// Lists per page asked for: the documented maximum of the list endpoints other than contacts.
pub const LISTS_PER_PAGE: u32 = 100;

/// Pages one listing may take before the API is taken not to honour `page` (10,000 lists per
/// account is the mock's and, as far as documented, any account's order of magnitude).
const MAX_LISTS_PAGES: u64 = 1_000;

impl Client {
    /// Every list, deleted ones included: `GET /v2/lists`, then `GET /v2/lists?status=deleted`,
    /// each paged through when its answer carries a `pagination` block. Retries and errors are
    /// those of contact pages; requests are counted in `stats`. A list deleted between the two
    /// requests appears in both answers, active in the first and deleted in the second.
    pub async fn lists(&self, stats: &StatsHandle) -> Result<Vec<ListsPage>, FetchError> {
        let admission = Admission::new(1, self.inner.max_rps);
        let mut pages = self.lists_with(None, &admission, stats).await?;
        pages.extend(self.lists_with(Some("deleted"), &admission, stats).await?);
        Ok(pages)
    }

    async fn lists_with(
        &self,
        status: Option<&str>,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<Vec<ListsPage>, FetchError> {
        let mut pages = Vec::new();
        let mut page = 1u64;
        loop {
            let url = self.lists_url(status, page);
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
                return Ok(pages);
            };
            if pagination.page != page {
                return Err(FetchError::Rejected {
                    page,
                    status: 200,
                    url: self.lists_url(status, page),
                    api: None,
                    body: format!(
                        "asked for page {page} of the lists but the answer says page {}",
                        pagination.page
                    ),
                });
            }
            let last = pages.last().map_or(0, ListsPage::len);
            if page >= pagination.total_pages || last == 0 {
                return Ok(pages);
            }
            if page >= MAX_LISTS_PAGES {
                return Err(FetchError::Rejected {
                    page,
                    status: 200,
                    url: self.lists_url(status, page),
                    api: None,
                    body: format!(
                        "the lists answer claims {} pages; more than {MAX_LISTS_PAGES} is taken as an API that ignores `page`",
                        pagination.total_pages
                    ),
                });
            }
            page += 1;
        }
    }
}
