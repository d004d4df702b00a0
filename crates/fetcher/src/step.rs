//! The main pass's decisions, without I/O: which page to read next, what a refused page past
//! the end means, and whether a page read lets the pass go on, ends it, or fails it.
//!
//! [`paginate`](crate::paginate) drives this with requests; everything here is a pure function
//! of the pages read so far, so each rule has a unit test that needs no HTTP.

use crate::error::FetchError;
use crate::verify::Read;

/// Pages in a row starting with the same contact (within the announced end) before the API is
/// taken to ignore `page`; past the announced end one is enough.
pub(crate) const MAX_REPEATED_PAGES: u32 = 3;

/// A refusal that frameworks give for a page past the end (400, or 404 as Django REST
/// Framework does).
pub(crate) fn past_the_end(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::Rejected {
            status: 400 | 404,
            ..
        }
    )
}

/// The page to read next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Next {
    /// Its number.
    pub(crate) number: u64,
    /// It lies past the end the first page announced: the last page came back full, so the
    /// listing grew or `total_pages` was low. Read on its own, not from the planned requests.
    pub(crate) tail: bool,
}

/// What a page read told the main pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Advance {
    /// The page before, which the verifier checks the boundary against.
    pub(crate) above: Read,
    /// A short page came before the announced end: the listing ends here, earlier than
    /// announced (worth a warning; the count still has to add up).
    pub(crate) short_before_planned: bool,
}

/// The state of the main pass between pages.
#[derive(Debug, Clone)]
pub(crate) struct MainPass {
    per_page: u64,
    /// `total_pages` the first page announced.
    planned: u64,
    next: u64,
    above: Read,
    /// Pages in a row that started with the same contact as the page before.
    repeats: u32,
}

impl MainPass {
    /// A pass whose first page (page 1, or where a resumed run starts) was `first`.
    pub(crate) fn new(per_page: u64, planned: u64, first: Read) -> MainPass {
        MainPass {
            per_page,
            planned,
            next: first.number + 1,
            above: first,
            repeats: 0,
        }
    }

    /// The page to read next, or `None` when the pass is over: the last page read was short
    /// (a short page ends the listing, whatever `total_pages` claimed).
    pub(crate) fn next(&self) -> Option<Next> {
        self.above.full.then_some(Next {
            number: self.next,
            tail: self.next > self.planned,
        })
    }

    /// The request for the next page failed for good. Many frameworks answer 404 or 400 for a
    /// page past the end (Django REST Framework: 404 "Invalid page."): once the count says the
    /// listing ends before it, that is an empty last page, reporting this `total`. Anything
    /// else fails the run.
    pub(crate) fn refused(&self, error: FetchError) -> Result<u64, FetchError> {
        let before = (self.next - 1).saturating_mul(self.per_page);
        if past_the_end(&error) && before >= self.above.total {
            tracing::debug!(page = self.next, %error, "a page past the end was refused; the listing ends here");
            Ok(self.above.total)
        } else {
            Err(error)
        }
    }

    /// The next page was read as `read`. Two pages in a row starting with the same contact
    /// cannot come from paging over one listing, drifting or not: the API is repeating itself
    /// (e.g. it ignores `page`). Within the announced end a few in a row fail the run, past it
    /// one does.
    pub(crate) fn advance(&mut self, read: Read) -> Result<Advance, FetchError> {
        debug_assert_eq!(read.number, self.next, "pages are read in order");
        if read.full && read.first.is_some() && read.first == self.above.first {
            self.repeats += 1;
            if read.number > self.planned || self.repeats >= MAX_REPEATED_PAGES {
                return Err(FetchError::RepeatingPages {
                    page: read.number,
                    repeats: self.repeats,
                });
            }
        } else {
            self.repeats = 0;
        }
        let advance = Advance {
            above: self.above,
            short_before_planned: !read.full && read.number < self.planned,
        };
        self.above = read;
        self.next = read.number + 1;
        Ok(advance)
    }

    /// The last page read.
    pub(crate) fn last(&self) -> &Read {
        &self.above
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackly_contacts::key::Identity;

    const PER_PAGE: u64 = 3;

    /// Page `number` of a listing of `total` contacts numbered from the top, each one second
    /// older than the one before; `len` contacts on the page.
    fn read(number: u64, len: u64, total: u64) -> Read {
        let start = (number - 1) * PER_PAGE;
        let ids: Vec<Identity> = (start..start + len)
            .map(|i| Identity {
                hash: 1_000 + i,
                signup: Some(1_000_000_000 - i as i64 * 1_000_000),
            })
            .collect();
        Read::of(number, PER_PAGE, total, &ids).unwrap()
    }

    /// A page whose contacts all repeat the first contact of page 1.
    fn repeating(number: u64, total: u64) -> Read {
        let ids = vec![
            Identity {
                hash: 1_000,
                signup: Some(1_000_000_000),
            };
            PER_PAGE as usize
        ];
        Read::of(number, PER_PAGE, total, &ids).unwrap()
    }

    fn rejected(status: u16) -> FetchError {
        FetchError::Rejected {
            page: 0,
            status,
            url: "http://127.0.0.1/api/v2/contacts".into(),
            api: None,
            body: "Invalid page.".into(),
        }
    }

    #[test]
    fn a_full_page_continues_with_the_next_planned_page() {
        let mut pass = MainPass::new(PER_PAGE, 3, read(1, 3, 9));
        assert_eq!(
            pass.next(),
            Some(Next {
                number: 2,
                tail: false
            })
        );
        let advance = pass.advance(read(2, 3, 9)).unwrap();
        assert_eq!(advance.above.number, 1);
        assert!(!advance.short_before_planned);
        assert_eq!(pass.next().map(|n| n.number), Some(3));
    }

    #[test]
    fn a_short_page_ends_the_pass_and_says_so_when_it_comes_early() {
        let mut pass = MainPass::new(PER_PAGE, 4, read(1, 3, 12));
        let advance = pass.advance(read(2, 1, 12)).unwrap();
        assert!(advance.short_before_planned);
        assert_eq!(pass.next(), None);
        assert_eq!(pass.last().number, 2);
        // On the planned last page a short page is simply the end.
        let mut pass = MainPass::new(PER_PAGE, 2, read(1, 3, 5));
        assert!(!pass.advance(read(2, 2, 5)).unwrap().short_before_planned);
        assert_eq!(pass.next(), None);
    }

    #[test]
    fn a_full_last_planned_page_reads_a_tail_page() {
        let mut pass = MainPass::new(PER_PAGE, 2, read(1, 3, 6));
        pass.advance(read(2, 3, 6)).unwrap();
        assert_eq!(
            pass.next(),
            Some(Next {
                number: 3,
                tail: true
            })
        );
    }

    #[test]
    fn a_refused_page_after_the_counted_end_is_an_empty_last_page() {
        let mut pass = MainPass::new(PER_PAGE, 2, read(1, 3, 6));
        pass.advance(read(2, 3, 6)).unwrap();
        for status in [404, 400] {
            assert_eq!(pass.refused(rejected(status)).unwrap(), 6);
        }
        // Other failures stay failures.
        let other = pass.refused(rejected(403)).unwrap_err();
        assert!(matches!(other, FetchError::Rejected { status: 403, .. }));
    }

    #[test]
    fn a_refused_page_inside_the_count_fails_with_the_refusal() {
        let pass = MainPass::new(PER_PAGE, 3, read(1, 3, 9));
        let err = pass.refused(rejected(404)).unwrap_err();
        assert!(
            matches!(err, FetchError::Rejected { status: 404, .. }),
            "{err}"
        );
    }

    #[test]
    fn the_same_first_contact_three_times_fails_as_repeating_pages() {
        let mut pass = MainPass::new(PER_PAGE, 10, repeating(1, 30));
        pass.advance(repeating(2, 30)).unwrap();
        pass.advance(repeating(3, 30)).unwrap();
        let err = pass.advance(repeating(4, 30)).unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::RepeatingPages {
                    page: 4,
                    repeats: 3
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_page_that_moves_on_resets_the_repeat_count() {
        let mut pass = MainPass::new(PER_PAGE, 10, repeating(1, 30));
        pass.advance(repeating(2, 30)).unwrap();
        pass.advance(read(3, 3, 30)).unwrap();
        pass.advance(read(4, 3, 30)).unwrap();
        assert!(pass.advance(read(5, 3, 30)).is_ok());
    }

    #[test]
    fn past_the_planned_end_one_repeat_is_enough() {
        let mut pass = MainPass::new(PER_PAGE, 1, repeating(1, 3));
        let err = pass.advance(repeating(2, 3)).unwrap_err();
        assert!(
            matches!(err, FetchError::RepeatingPages { page: 2, .. }),
            "{err}"
        );
    }
}
