//! The deterministic seed of the simulated workspace.
//!
//! Tests assert on these ids and texts, so they are constants and never depend on the clock or
//! an RNG. The knowledge is a small company handbook: questions about PTO, expenses, security
//! or onboarding have one clearly best chunk, which the knowledge agents quote.

use std::collections::BTreeMap;

use super::world::{Agent, AgentKind, DataSource, DataSourceView, Document, Space, Table, World};

/// sId of the global Dust agent.
pub const DUST_AGENT_ID: &str = "dust";
/// sId of "HR Handbook": answers only from the Employee Handbook folder.
pub const HANDBOOK_AGENT_ID: &str = "hRb00kAg3n";
/// sId of "Echo": its answer is `You said: <the user's message, byte for byte>`.
pub const ECHO_AGENT_ID: &str = "ech0Ag3ntX";
/// sId of "Broken": streams a few tokens, then ends with `agent_error`.
pub const FAILING_AGENT_ID: &str = "fa1lAg3ntX";
/// sId of "Sloth": streams a long answer with [`SLOW_AGENT_TOKEN_DELAY_MS`] between tokens.
pub const SLOW_AGENT_ID: &str = "sl0wAg3ntX";

/// sId of "Reporter": calls a tool that fails, so its run ends with `tool_error`.
pub const TOOL_ERROR_AGENT_ID: &str = "t00lErr0rX";
/// sId of "Mailer": sends an email with a Gmail tool that needs approval
/// (`tool_approve_execution`) unless the message skips tool validation.
pub const APPROVAL_AGENT_ID: &str = "appr0valAg";
/// sId of "Planner": asks the person which office to book (`tool_ask_user_question`).
pub const QUESTION_AGENT_ID: &str = "qu3stionAg";
/// sId of "DriveReader": needs the person to connect Google Drive
/// (`tool_personal_auth_required`); the run stays paused until cancelled.
pub const PERSONAL_AUTH_AGENT_ID: &str = "p3rsAuthAg";

/// Pause between two tokens of the slow agent: long enough for timeout and cancel tests.
pub const SLOW_AGENT_TOKEN_DELAY_MS: u64 = 500;

/// The global space "Company Data".
pub const COMPANY_SPACE_ID: &str = "vlt_c0mpanyDat4";
/// The regular space "Engineering".
pub const ENGINEERING_SPACE_ID: &str = "vlt_eng1neer1ng";
/// The admin-only system space, where the managed connectors live. The simulator's keys are
/// ordinary keys: they never see it, and reach the connectors through views only.
pub const SYSTEM_SPACE_ID: &str = "vlt_syst3mSpac3";

/// Folder "Employee Handbook" (Company Data): `pto-policy`, `expenses`, `security`, `onboarding`.
pub const HANDBOOK_DS_ID: &str = "dts_handb00kF0ld";
/// Folder "FAQ" (Company Data): `faq-general`, `faq-it`.
pub const FAQ_DS_ID: &str = "dts_faqF0lder001";
/// Notion connector (system space, managed): `notion-roadmap` (under the page
/// `notion-product`), `notion-okrs` (under `notion-company`), `notion-board-minutes` (under
/// `notion-board`, which no view selects: no key ever reaches it).
pub const NOTION_DS_ID: &str = "dts_n0tionC0nn01";
/// Folder "Runbooks" (Engineering): `runbooks/deploy.md`, `on call rotation`.
pub const RUNBOOKS_DS_ID: &str = "dts_runb00kF0ld1";
/// Slack connector (system space, managed): `slack-incidents`, `slack-deploys`.
pub const SLACK_DS_ID: &str = "dts_s1ackC0nn001";

/// Default view of the Employee Handbook folder in Company Data.
pub const HANDBOOK_VIEW_ID: &str = "dsv_handb00kVw1";
/// Default view of the FAQ folder in Company Data.
pub const FAQ_VIEW_ID: &str = "dsv_faqV1ew0001";
/// View of the Notion connector in Company Data: the pages under `notion-product` and
/// `notion-company` (not the board's).
pub const NOTION_VIEW_ID: &str = "dsv_n0tionC0mp1";
/// Default view of the Runbooks folder in Engineering.
pub const RUNBOOKS_VIEW_ID: &str = "dsv_runb00kVw01";
/// View of the whole Slack connector in Engineering.
pub const SLACK_VIEW_ID: &str = "dsv_s1ackEng001";
/// View of the Notion connector in Engineering: only the pages under `notion-product`.
pub const NOTION_ENGINEERING_VIEW_ID: &str = "dsv_n0tionEng01";

/// 2025-11-01T00:00:00Z: the seeded objects' creation time, in epoch ms.
const SEED_TIME_MS: i64 = 1_761_955_200_000;
/// One day in ms, to spread document timestamps.
const DAY_MS: i64 = 86_400_000;

/// The seeded agents (the global `dust` agent first).
pub(crate) fn agents() -> Vec<Agent> {
    vec![
        Agent {
            s_id: DUST_AGENT_ID,
            id: 1,
            name: "dust",
            description: "An assistant with context on your company data.",
            instructions: None,
            scope: "global",
            model_provider: "anthropic",
            model_id: "claude-sonnet-4-5",
            kind: AgentKind::Dust,
        },
        custom(
            HANDBOOK_AGENT_ID,
            101,
            "HRHandbook",
            "Answers HR questions from the Employee Handbook.",
            AgentKind::Knowledge {
                data_source_id: HANDBOOK_DS_ID,
            },
        ),
        custom(
            ECHO_AGENT_ID,
            102,
            "Echo",
            "Repeats your message back, verbatim.",
            AgentKind::Echo,
        ),
        custom(
            FAILING_AGENT_ID,
            103,
            "Broken",
            "Always fails after a few words (for testing).",
            AgentKind::Failing,
        ),
        custom(
            SLOW_AGENT_ID,
            104,
            "Sloth",
            "Answers very slowly (for timeout and cancellation tests).",
            AgentKind::Slow,
        ),
        custom(
            TOOL_ERROR_AGENT_ID,
            105,
            "Reporter",
            "Fetches the weekly report with a tool that is down (for testing).",
            AgentKind::ToolError,
        ),
        custom(
            APPROVAL_AGENT_ID,
            106,
            "Mailer",
            "Sends your message by email to the CEO (asks for approval first).",
            AgentKind::Approval,
        ),
        custom(
            QUESTION_AGENT_ID,
            107,
            "Planner",
            "Books a meeting room; asks you which office first.",
            AgentKind::Question,
        ),
        custom(
            PERSONAL_AUTH_AGENT_ID,
            108,
            "DriveReader",
            "Lists your Google Drive files (needs you to connect Google Drive).",
            AgentKind::PersonalAuth,
        ),
    ]
}

fn custom(
    s_id: &'static str,
    id: u64,
    name: &'static str,
    description: &'static str,
    kind: AgentKind,
) -> Agent {
    Agent {
        s_id,
        id,
        name,
        description,
        instructions: Some(description),
        scope: "visible",
        model_provider: "openai",
        model_id: "gpt-5",
        kind,
    }
}

/// The seeded spaces.
pub(crate) fn spaces() -> Vec<Space> {
    vec![
        Space {
            s_id: COMPANY_SPACE_ID,
            name: "Company Data",
            kind: "global",
            created_at: SEED_TIME_MS,
        },
        Space {
            s_id: ENGINEERING_SPACE_ID,
            name: "Engineering",
            kind: "regular",
            created_at: SEED_TIME_MS,
        },
        Space {
            s_id: SYSTEM_SPACE_ID,
            name: "System",
            kind: "system",
            created_at: SEED_TIME_MS,
        },
    ]
}

/// The seeded data source views: one per folder in its own space, and the connectors in the
/// spaces that use them.
pub(crate) fn views() -> Vec<DataSourceView> {
    let view = |id, s_id, space_id, data_source_id, parents_in: Option<Vec<&'static str>>| {
        DataSourceView {
            id,
            s_id,
            space_id,
            data_source_id,
            parents_in,
            created_at: SEED_TIME_MS,
        }
    };
    vec![
        view(21, HANDBOOK_VIEW_ID, COMPANY_SPACE_ID, HANDBOOK_DS_ID, None),
        view(22, FAQ_VIEW_ID, COMPANY_SPACE_ID, FAQ_DS_ID, None),
        view(
            23,
            NOTION_VIEW_ID,
            COMPANY_SPACE_ID,
            NOTION_DS_ID,
            Some(vec!["notion-product", "notion-company"]),
        ),
        view(
            24,
            RUNBOOKS_VIEW_ID,
            ENGINEERING_SPACE_ID,
            RUNBOOKS_DS_ID,
            None,
        ),
        view(25, SLACK_VIEW_ID, ENGINEERING_SPACE_ID, SLACK_DS_ID, None),
        view(
            26,
            NOTION_ENGINEERING_VIEW_ID,
            ENGINEERING_SPACE_ID,
            NOTION_DS_ID,
            Some(vec!["notion-product"]),
        ),
    ]
}

/// The seeded data sources with their documents.
pub(crate) fn data_sources() -> Vec<DataSource> {
    vec![
        data_source(
            11,
            HANDBOOK_DS_ID,
            COMPANY_SPACE_ID,
            "Employee Handbook",
            None,
            HANDBOOK,
        ),
        data_source(12, FAQ_DS_ID, COMPANY_SPACE_ID, "FAQ", None, FAQ),
        data_source(
            13,
            NOTION_DS_ID,
            SYSTEM_SPACE_ID,
            "notion",
            Some(("notion", "7")),
            NOTION,
        ),
        data_source(
            14,
            RUNBOOKS_DS_ID,
            ENGINEERING_SPACE_ID,
            "Runbooks",
            None,
            RUNBOOKS,
        ),
        data_source(
            15,
            SLACK_DS_ID,
            SYSTEM_SPACE_ID,
            "slack",
            Some(("slack", "8")),
            SLACK,
        ),
    ]
}

/// The full seeded world of the primary workspace.
pub(crate) fn seeded_world() -> World {
    World::new(agents(), spaces(), data_sources(), views())
}

/// The other workspace: only the global agent, no spaces (it exists for auth tests).
pub(crate) fn other_world() -> World {
    World::new(
        agents().into_iter().take(1).collect(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    )
}

/// A seeded document: id, title, tags (besides `title:`), text. Paragraphs are search chunks.
type SeedDoc = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

fn data_source(
    id: u64,
    s_id: &'static str,
    space_id: &'static str,
    name: &'static str,
    connector: Option<(&'static str, &'static str)>,
    docs: &[SeedDoc],
) -> DataSource {
    let documents = docs
        .iter()
        .enumerate()
        .map(|(i, (doc_id, title, tags, text))| {
            let mut all_tags = vec![format!("title:{title}")];
            all_tags.extend(tags.iter().map(|t| (*t).to_owned()));
            let day = i64::try_from(i).unwrap_or(0);
            let document = Document {
                ancestors: ANCESTORS
                    .iter()
                    .filter(|(d, _)| d == doc_id)
                    .map(|(_, a)| (*a).to_owned())
                    .collect(),
                document_id: (*doc_id).to_owned(),
                title: (*title).to_owned(),
                source_url: Some(format!("https://handbook.example.com/{doc_id}")),
                tags: all_tags,
                timestamp: SEED_TIME_MS + day * DAY_MS,
                created: SEED_TIME_MS,
                mime_type: "text/markdown".to_owned(),
                text: (*text).to_owned(),
            };
            ((*doc_id).to_owned(), document)
        })
        .collect::<BTreeMap<_, _>>();
    DataSource {
        id,
        s_id,
        space_id,
        name,
        description: name,
        connector_provider: connector.map(|c| c.0),
        connector_id: connector.map(|c| c.1),
        created_at: SEED_TIME_MS,
        documents,
        tables: if s_id == HANDBOOK_DS_ID {
            seeded_tables()
        } else {
            BTreeMap::new()
        },
    }
}

/// The Employee Handbook folder's table: `offices` (city/text, seats/int, opened/datetime,
/// remote/bool), three rows.
fn seeded_tables() -> BTreeMap<String, Table> {
    let row = |city: &str, seats: i64, opened: i64, remote: bool| {
        let value = serde_json::json!({
            "city": city,
            "seats": seats,
            "opened": {"type": "datetime", "epoch": opened},
            "remote": remote,
        });
        match value {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    };
    let rows = [
        (
            "paris",
            row("Paris", 120, SEED_TIME_MS - 900 * DAY_MS, false),
        ),
        (
            "lisbon",
            row("Lisbon", 45, SEED_TIME_MS - 400 * DAY_MS, true),
        ),
        (
            "new-york",
            row("New York", 80, SEED_TIME_MS - 200 * DAY_MS, false),
        ),
    ];
    let offices = Table {
        table_id: "offices".to_owned(),
        name: "offices".to_owned(),
        title: "Offices".to_owned(),
        description: "The company's offices: city, seats, opening date, remote-first.".to_owned(),
        timestamp: SEED_TIME_MS,
        tags: vec!["topic:facilities".to_owned()],
        mime_type: "text/csv".to_owned(),
        rows: rows
            .into_iter()
            .map(|(id, value)| (id.to_owned(), value))
            .collect(),
    };
    BTreeMap::from([(offices.table_id.clone(), offices)])
}

const HANDBOOK: &[SeedDoc] = &[
    (
        "pto-policy",
        "PTO Policy",
        &["lang:en", "topic:hr"],
        "Full-time employees accrue 25 days of paid time off (PTO) per year, credited monthly.\n\n\
      PTO requests must be submitted in the HR portal at least two weeks in advance for absences longer than three days.\n\n\
      Up to 5 unused PTO days carry over to the next year; the rest expire on March 31.\n\n\
      Contractors do not accrue PTO; their time off is agreed with their manager.",
    ),
    (
        "expenses",
        "Expense Policy",
        &["lang:en", "topic:finance"],
        "Business expenses are reimbursed within 30 days when submitted with a receipt in the expense tool.\n\n\
      Meals while travelling are covered up to 60 EUR per day; alcohol is never reimbursed.\n\n\
      Flights longer than six hours may be booked in premium economy; all other flights in economy.\n\n\
      Expenses above 1000 EUR need the written approval of a budget owner before purchase.",
    ),
    (
        "security",
        "Security Guidelines",
        &["lang:en", "topic:security"],
        "Every laptop must use full-disk encryption and lock the screen after five minutes of inactivity.\n\n\
      Passwords are stored in the company password manager; two-factor authentication is mandatory on every account.\n\n\
      Report a lost device or a suspected phishing email to security@example.com within one hour.\n\n\
      Customer data must never be copied to personal devices or personal cloud storage.",
    ),
    (
        "onboarding",
        "Onboarding Checklist",
        &["lang:en", "topic:hr"],
        "On day one, new hires receive their laptop, badge and accounts from the IT desk.\n\n\
      During the first week every new hire meets their buddy, their manager and the security team.\n\n\
      The onboarding training on the handbook, security and tools must be completed within 30 days.",
    ),
];

const FAQ: &[SeedDoc] = &[
    (
        "faq-general",
        "General FAQ",
        &["lang:en", "topic:faq"],
        "Q: Where is the office? A: The office is at 12 Rue de la Paix, Paris, open 8am to 8pm.\n\n\
      Q: Is there a parking lot? A: Bike parking is in the basement; there is no car parking.\n\n\
      Q: Who do I ask about payroll? A: Write to payroll@example.com, answers within two business days.",
    ),
    (
        "faq-it",
        "IT FAQ",
        &["lang:en", "topic:it"],
        "Q: How do I reset my password? A: Use the self-service portal at id.example.com.\n\n\
      Q: How do I get a second monitor? A: Open an IT desk ticket; monitors ship within a week.\n\n\
      Q: Which VPN do we use? A: WireGuard, configured automatically on company laptops.",
    ),
];

const NOTION: &[SeedDoc] = &[
    (
        "notion-roadmap",
        "Product Roadmap 2026",
        &["lang:en", "source:notion"],
        "Q1 2026: launch the mobile app and the new analytics dashboard.\n\n\
      Q2 2026: single sign-on for all customers and a public API for reports.",
    ),
    (
        "notion-okrs",
        "Company OKRs",
        &["lang:en", "source:notion"],
        "Objective: delight customers. Key result: raise the NPS from 40 to 55.\n\n\
      Objective: grow revenue. Key result: reach 10 million EUR of annual recurring revenue.",
    ),
    (
        "notion-board-minutes",
        "Board Minutes (confidential)",
        &["lang:en", "source:notion"],
        "The board approved the acquisition of Example Corp for 12 million EUR, to be announced in March.",
    ),
];

/// The connectors' trees: `(document, parent node)`.
const ANCESTORS: &[(&str, &str)] = &[
    ("notion-roadmap", "notion-product"),
    ("notion-okrs", "notion-company"),
    ("notion-board-minutes", "notion-board"),
    ("slack-incidents", "slack-channel-incidents"),
    ("slack-deploys", "slack-channel-deploys"),
];

const RUNBOOKS: &[SeedDoc] = &[
    (
        "runbooks/deploy.md",
        "Deploy Runbook",
        &["lang:en", "topic:ops"],
        "Deploys happen from the main branch through the CI pipeline, never from a laptop.\n\n\
      To roll back a deploy, re-run the pipeline of the previous release tag.\n\n\
      No deploys on Fridays after 3pm unless the incident commander approves.",
    ),
    (
        "on call rotation",
        "On-call Rotation",
        &["lang:en", "topic:ops"],
        "The on-call engineer rotates every Monday at 10am and carries the pager for one week.\n\n\
      Pages must be acknowledged within 15 minutes, day and night.",
    ),
];

const SLACK: &[SeedDoc] = &[
    (
        "slack-incidents",
        "#incidents October",
        &["lang:en", "source:slack"],
        "Incident 42: the database failover took 4 minutes; the postmortem recommends faster health checks.\n\n\
      Incident 43: an expired TLS certificate broke the status page for 20 minutes.",
    ),
    (
        "slack-deploys",
        "#deploys",
        &["lang:en", "source:slack"],
        "Release 3.14 deployed to production at 14:02 by the platform team.\n\n\
      Release 3.15 was rolled back because of a failing migration.",
    ),
];
