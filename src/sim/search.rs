//! Deterministic lexical search over document chunks, standing in for Dust's semantic search.
//!
//! Dust embeds chunks and ranks them by vector similarity; tests need answers that never
//! change, so the simulator scores a chunk by the share of the query's words it contains (the
//! document title counts as part of every chunk), plus a small bonus for repeated words.
//! Documents are split into chunks at blank lines.

use std::collections::HashSet;

use super::world::Document;

/// Words ignored in queries: they would match everything.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "at", "be", "by", "can", "do", "does", "for", "from", "how", "i",
    "in", "is", "it", "me", "my", "of", "on", "or", "our", "should", "tell", "the", "to", "us",
    "we", "what", "when", "where", "which", "who", "why", "with", "you", "your", "about", "there",
];

/// Weight of the share of query words found; the rest rewards repetitions.
const COVERAGE_WEIGHT: f64 = 0.9;
/// Repetitions beyond this add nothing to the score.
const MAX_COUNTED_REPEATS: usize = 5;

/// One chunk of a document: its byte offset in the text and its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub offset: usize,
    pub text: String,
}

/// A scored chunk of a document of some data source.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub data_source_id: String,
    pub document_id: String,
    pub chunk: Chunk,
    pub score: f64,
}

/// Splits a text into paragraph chunks.
pub(crate) fn chunks(text: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in text.split("\n\n") {
        let trimmed = part.trim();
        if !trimmed.is_empty() {
            let lead = part.len() - part.trim_start().len();
            out.push(Chunk {
                offset: offset + lead,
                text: trimmed.to_owned(),
            });
        }
        offset += part.len() + 2;
    }
    out
}

/// Lower-cased words of a text, with a plural `s` dropped.
pub(crate) fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_lowercase();
            match lower.strip_suffix('s') {
                Some(stem) if stem.chars().count() >= 3 && !stem.ends_with('s') => stem.to_owned(),
                _ => lower,
            }
        })
        .collect()
}

/// The distinct meaningful words of a query.
fn query_terms(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(query)
        .into_iter()
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// Score of a chunk for the query words, in `0..=1` (0: no word matched).
fn score(query: &[String], title_terms: &HashSet<String>, chunk: &str) -> f64 {
    if query.is_empty() {
        return 0.0;
    }
    let words = terms(chunk);
    let present: HashSet<&str> = words.iter().map(String::as_str).collect();
    let matched = query
        .iter()
        .filter(|q| present.contains(q.as_str()) || title_terms.contains(*q))
        .count();
    if matched == 0 {
        return 0.0;
    }
    let repeats = words.iter().filter(|w| query.contains(w)).count();
    let coverage = matched as f64 / query.len() as f64;
    let bonus = repeats.min(MAX_COUNTED_REPEATS) as f64 / MAX_COUNTED_REPEATS as f64;
    let raw = COVERAGE_WEIGHT * coverage + (1.0 - COVERAGE_WEIGHT) * bonus;
    (raw * 10_000.0).round() / 10_000.0
}

/// The `top_k` best chunks of `documents` for `query`, best first (ties in id order).
pub(crate) fn search<'a>(
    documents: impl Iterator<Item = (&'a str, &'a Document)>,
    query: &str,
    top_k: usize,
) -> Vec<Hit> {
    let wanted = query_terms(query);
    let mut hits: Vec<Hit> = documents
        .flat_map(|(ds_id, doc)| {
            let title_terms: HashSet<String> = terms(&doc.title).into_iter().collect();
            let wanted = &wanted;
            chunks(&doc.text).into_iter().filter_map(move |chunk| {
                let score = score(wanted, &title_terms, &chunk.text);
                (score > 0.0).then(|| Hit {
                    data_source_id: ds_id.to_owned(),
                    document_id: doc.document_id.clone(),
                    chunk,
                    score,
                })
            })
        })
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.data_source_id.cmp(&b.data_source_id))
            .then_with(|| a.document_id.cmp(&b.document_id))
            .then_with(|| a.chunk.offset.cmp(&b.chunk.offset))
    });
    hits.truncate(top_k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_offsets_into_the_text() {
        let text = "one\n\n  two\n\nthree";
        for chunk in chunks(text) {
            assert!(text[chunk.offset..].starts_with(&chunk.text));
        }
    }

    #[test]
    fn plural_and_case_do_not_matter() {
        assert_eq!(terms("Expenses, PTO"), vec!["expense", "pto"]);
    }
}
