//! The schema: migrations applied in order (`PRAGMA user_version` counts
//! them), and opening a connection with the settings every connection
//! uses (WAL, `synchronous=FULL`, foreign keys, busy timeout).
//!
//! Append only: a migration that has shipped is never edited.

#[allow(unused_imports)]
use super::*;

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran.
/// Append only: never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: inbound messages, their envelope recipients, raw bytes and documents.
    r#"
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        direction       TEXT    NOT NULL DEFAULT 'inbound',
        received_at     INTEGER NOT NULL,           -- unix ms, final dot received
        session_id      TEXT    NOT NULL,
        envelope_sender TEXT    NOT NULL,           -- '' for the null sender
        client_addr     TEXT    NOT NULL,
        helo            TEXT    NOT NULL,
        size            INTEGER NOT NULL,           -- bytes as stored (trace headers included)
        sha256          TEXT    NOT NULL,           -- of the bytes the client sent: dedup key
        from_name       TEXT,
        from_addr       TEXT,
        to_json         TEXT    NOT NULL DEFAULT '[]',
        cc_json         TEXT    NOT NULL DEFAULT '[]',
        reply_to_json   TEXT    NOT NULL DEFAULT '[]',
        subject         TEXT,
        date            TEXT,
        message_id      TEXT,
        in_reply_to_json TEXT   NOT NULL DEFAULT '[]',
        references_json TEXT    NOT NULL DEFAULT '[]',
        auto_submitted  TEXT,
        list_id         TEXT,
        precedence      TEXT,
        automatic       INTEGER NOT NULL DEFAULT 0,
        delivery_report INTEGER NOT NULL DEFAULT 0,
        parsed          INTEGER NOT NULL DEFAULT 1  -- 0: parser failed, raw kept
    );
    CREATE UNIQUE INDEX messages_sha256 ON messages(sha256);
    CREATE INDEX messages_message_id ON messages(message_id);
    CREATE INDEX messages_from_addr ON messages(from_addr);

    CREATE TABLE message_recipients (
        message_id INTEGER NOT NULL REFERENCES messages(id),
        address    TEXT    NOT NULL,
        PRIMARY KEY (message_id, address)
    ) WITHOUT ROWID;

    CREATE TABLE message_raw (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id),
        trace_len  INTEGER NOT NULL,                -- bytes of our Return-Path/Received
        raw        BLOB    NOT NULL
    );

    CREATE TABLE documents (
        id           INTEGER PRIMARY KEY,
        message_id   INTEGER REFERENCES messages(id),
        part         TEXT    NOT NULL,
        filename     TEXT    NOT NULL,
        content_type TEXT    NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT    NOT NULL,
        category     TEXT    NOT NULL DEFAULT 'unsorted',
        content      BLOB    NOT NULL
    );
    CREATE INDEX documents_message ON documents(message_id);
    "#,
    // 2: candidates, applications, and each message's place in a thread.
    r#"
    CREATE TABLE candidates (
        id          INTEGER PRIMARY KEY,
        first_name  TEXT    NOT NULL DEFAULT '',
        last_name   TEXT    NOT NULL DEFAULT '',
        gender      TEXT    NOT NULL DEFAULT 'unknown'
                    CHECK (gender IN ('female', 'male', 'diverse', 'unknown')),
        language    TEXT,
        created_at  INTEGER NOT NULL,
        merged_into INTEGER REFERENCES candidates(id)   -- set when merged into another record
    );

    CREATE TABLE candidate_addresses (
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        address      TEXT    NOT NULL,                  -- as written, domain lowercased
        address_key  TEXT    NOT NULL,                  -- lowercased, for lookups
        added_at     INTEGER NOT NULL,
        PRIMARY KEY (address_key, candidate_id)
    ) WITHOUT ROWID;
    CREATE INDEX candidate_addresses_candidate ON candidate_addresses(candidate_id);

    CREATE TABLE applications (
        id           INTEGER PRIMARY KEY,
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        subsidiary   TEXT    NOT NULL,
        position     TEXT,                              -- NULL: general application
        source       TEXT    NOT NULL CHECK (source IN ('email', 'form')),
        status       TEXT    NOT NULL DEFAULT 'new'
                     CHECK (status IN ('new', 'in-review', 'interview', 'offer', 'hired', 'rejected', 'withdrawn')),
        received_at  INTEGER NOT NULL,
        message_id   INTEGER REFERENCES messages(id)    -- the mail that made it, for e-mail applications
    );
    CREATE INDEX applications_candidate ON applications(candidate_id);

    ALTER TABLE messages ADD COLUMN original_message_id TEXT;     -- X-Microsoft-Original-Message-ID
    ALTER TABLE messages ADD COLUMN candidate_id INTEGER REFERENCES candidates(id);
    ALTER TABLE messages ADD COLUMN assignment TEXT NOT NULL DEFAULT 'pending'
        CHECK (assignment IN ('pending', 'assigned', 'unassigned', 'none'));
    ALTER TABLE messages ADD COLUMN match_reason TEXT;
    ALTER TABLE messages ADD COLUMN match_detail TEXT;
    ALTER TABLE messages ADD COLUMN closed_thread INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_original_message_id ON messages(original_message_id);
    CREATE INDEX messages_candidate ON messages(candidate_id, id);
    CREATE INDEX messages_assignment ON messages(assignment, id);

    CREATE TABLE message_suggestions (
        message_id   INTEGER NOT NULL REFERENCES messages(id),
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        PRIMARY KEY (message_id, candidate_id)
    ) WITHOUT ROWID;
    "#,
    // 3: the outbox: one item per outgoing mail, its frozen bytes in the
    // thread (messages, direction 'outbound'), every state change an event.
    r#"
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        batch_id        TEXT    NOT NULL,
        candidate_id    INTEGER NOT NULL REFERENCES candidates(id),
        application_id  INTEGER REFERENCES applications(id),
        message_id      INTEGER NOT NULL REFERENCES messages(id),
        template        TEXT,
        subsidiary      TEXT    NOT NULL,
        sender          TEXT    NOT NULL,                -- sender id ('default': the jobs address)
        envelope_from   TEXT    NOT NULL,
        recipients_json TEXT    NOT NULL,                -- envelope: the candidate, an archive Bcc
        state           TEXT    NOT NULL CHECK (state IN
            ('scheduled', 'queued', 'sending', 'sent', 'deferred', 'failed', 'cancelled', 'bounced')),
        not_before      INTEGER,                         -- scheduled: not before this (unix ms)
        next_attempt_at INTEGER,                         -- when the relay may try (unix ms)
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        last_reply      TEXT
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE INDEX outbox_candidate ON outbox(candidate_id);
    CREATE INDEX outbox_batch ON outbox(batch_id);

    CREATE TABLE outbox_events (
        id         INTEGER PRIMARY KEY,
        item_id    INTEGER NOT NULL REFERENCES outbox(id),
        at         INTEGER NOT NULL,
        from_state TEXT,
        to_state   TEXT    NOT NULL,
        attempt    INTEGER NOT NULL DEFAULT 0,
        code       INTEGER,
        text       TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX outbox_events_item ON outbox_events(item_id, id);
    "#,
    // 4: an operator may hold an item (postsuper -h): the relay leaves it alone.
    r#"
    ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: addresses that bounced hard are not written to until they expire
    // or an operator removes them.
    r#"
    CREATE TABLE suppressions (
        address_key TEXT PRIMARY KEY,                    -- lowercased
        address     TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        item_id     INTEGER,                             -- the outbox item that bounced
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 6: the circuit breaker of each subsidiary's upstream, for the relay
    // and for `queue list`.
    r#"
    CREATE TABLE upstreams (
        subsidiary   TEXT PRIMARY KEY,
        failures     INTEGER NOT NULL DEFAULT 0,            -- consecutive
        paused_until INTEGER,                               -- unix ms
        pause_ms     INTEGER NOT NULL DEFAULT 0,            -- the last pause's length
        last_error   TEXT,
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7: every acknowledgement decision, on the application it answers.
    r#"
    CREATE TABLE auto_replies (
        id             INTEGER PRIMARY KEY,
        application_id INTEGER NOT NULL REFERENCES applications(id),
        candidate_id   INTEGER NOT NULL REFERENCES candidates(id),
        category       TEXT,
        source         TEXT    NOT NULL,                 -- email | form
        address        TEXT    NOT NULL,                 -- lowercased: whom it would go to
        decision       TEXT    NOT NULL CHECK (decision IN ('pending', 'queued', 'suppressed', 'failed')),
        rule           TEXT,                             -- why suppressed
        detail         TEXT    NOT NULL DEFAULT '',
        template       TEXT,
        sender         TEXT,
        item_id        INTEGER REFERENCES outbox(id),
        created_at     INTEGER NOT NULL
    );
    CREATE INDEX auto_replies_decision ON auto_replies(decision);
    CREATE INDEX auto_replies_candidate ON auto_replies(candidate_id, category, created_at);
    CREATE INDEX auto_replies_address ON auto_replies(address, created_at);
    "#,
    // 8: a store of a million messages: every listing walks an index newest
    // first, and the outbox's per-state totals are kept as items change
    // instead of being counted over its whole history.
    r#"
    CREATE INDEX outbox_state ON outbox(state, id);
    CREATE INDEX outbox_message ON outbox(message_id);
    CREATE INDEX auto_replies_application ON auto_replies(application_id, id);
    CREATE INDEX applications_message ON applications(message_id);
    -- A delivery report that names only the recipient finds our mail to it.
    CREATE INDEX message_recipients_address ON message_recipients(address COLLATE NOCASE);

    CREATE TABLE outbox_counts (
        state TEXT    PRIMARY KEY,
        items INTEGER NOT NULL,
        bytes INTEGER NOT NULL                        -- the mails' sizes
    ) WITHOUT ROWID;
    INSERT INTO outbox_counts (state, items, bytes)
        SELECT o.state, count(*), coalesce(sum(m.size), 0)
        FROM outbox o LEFT JOIN messages m ON m.id = o.message_id GROUP BY o.state;
    CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
        INSERT INTO outbox_counts (state, items, bytes)
            VALUES (new.state, 1, coalesce((SELECT size FROM messages WHERE id = new.message_id), 0))
            ON CONFLICT (state) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER outbox_counts_update AFTER UPDATE OF state ON outbox
        WHEN old.state IS NOT new.state BEGIN
        UPDATE outbox_counts SET items = items - 1,
            bytes = bytes - coalesce((SELECT size FROM messages WHERE id = old.message_id), 0)
            WHERE state = old.state;
        INSERT INTO outbox_counts (state, items, bytes)
            VALUES (new.state, 1, coalesce((SELECT size FROM messages WHERE id = new.message_id), 0))
            ON CONFLICT (state) DO UPDATE SET items = items + 1, bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_counts SET items = items - 1,
            bytes = bytes - coalesce((SELECT size FROM messages WHERE id = old.message_id), 0)
            WHERE state = old.state;
    END;
    "#,
    // 9: what SPF, DKIM, DMARC and ARC said of a mail on receipt (JSON of
    // model::Authentication; NULL when not checked).
    r#"
    ALTER TABLE messages ADD COLUMN authentication_json TEXT;
    -- The hourly limit over all acknowledgements counts the last hour only.
    CREATE INDEX auto_replies_created ON auto_replies(created_at);
    "#,
    // 10: the relay claims per subsidiary, as many as its upstream can take.
    r#"
    CREATE INDEX outbox_due_subsidiary ON outbox(subsidiary, state, next_attempt_at);
    "#,
    // 11: `queue retry` of a failed item starts its queue lifetime again.
    r#"
    ALTER TABLE outbox ADD COLUMN lifetime_from INTEGER;
    "#,
    // 12: the mail had more documents than are kept (the raw mail has them all).
    r#"
    ALTER TABLE messages ADD COLUMN documents_truncated INTEGER NOT NULL DEFAULT 0;
    "#,
    // 13: where a candidate's language came from (matcher::language::
    // LanguageSource: form, content-language, detected). Until now only
    // Content-Language set one.
    r#"
    ALTER TABLE candidates ADD COLUMN language_source TEXT;
    UPDATE candidates SET language_source = 'content-language' WHERE language IS NOT NULL;
    "#,
    // 14: the TLS of the session a mail came in, as negotiated (version
    // and cipher, mail::parsed::TlsInfo); NULL: in the clear, or our own.
    r#"
    ALTER TABLE messages ADD COLUMN tls_version TEXT;
    ALTER TABLE messages ADD COLUMN tls_cipher TEXT;
    "#,
    // 15: who saw or changed which document, and every request refused
    // (`jobmail audit`).
    r#"
    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        actor    TEXT    NOT NULL,
        action   TEXT    NOT NULL,
        object   TEXT    NOT NULL,
        allowed  INTEGER NOT NULL,
        detail   TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_actor ON audit(actor, id);
    CREATE INDEX documents_category ON documents(category);
    "#,
    // 16: documents uploaded to a candidate (by the API or a form; no
    // message), and documents deleted (the row kept for the raw mail's
    // access check, the bytes gone).
    r#"
    ALTER TABLE documents ADD COLUMN candidate_id INTEGER REFERENCES candidates(id);
    ALTER TABLE documents ADD COLUMN added_by TEXT;
    ALTER TABLE documents ADD COLUMN added_at INTEGER;
    ALTER TABLE documents ADD COLUMN deleted_at INTEGER;
    ALTER TABLE documents ADD COLUMN deleted_by TEXT;
    CREATE INDEX documents_candidate ON documents(candidate_id) WHERE candidate_id IS NOT NULL;
    "#,
    // 17: webhook endpoints (kept in step with the config by the daemon),
    // events written with the change they report, one delivery per endpoint.
    r#"
    CREATE TABLE webhook_endpoints (
        id          TEXT PRIMARY KEY,
        url         TEXT NOT NULL,
        events_json TEXT NOT NULL,
        active      INTEGER NOT NULL DEFAULT 1,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE webhook_events (
        id           INTEGER PRIMARY KEY,
        uid          TEXT NOT NULL UNIQUE,
        type         TEXT NOT NULL,
        candidate_id INTEGER,
        created_at   INTEGER NOT NULL,
        body         TEXT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        endpoint        TEXT NOT NULL REFERENCES webhook_endpoints(id),
        event_id        INTEGER NOT NULL REFERENCES webhook_events(id),
        candidate_id    INTEGER,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_attempt_at INTEGER,
        last_error      TEXT,
        delivered_at    INTEGER,
        PRIMARY KEY (endpoint, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
    CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(endpoint, candidate_id, event_id)
        WHERE state = 'pending';
    "#,
    // 18: search. Each mail's subject and sender, its candidate's name,
    // and each candidate's name and addresses, in trigram indexes: any part
    // of a word, in any case. Accents are taken off before (`FOLD COLUMN`,
    // written out by `search::expand_fold` as generated columns of plain
    // `replace` calls, so that the SQLite of an operator's tools, 3.34 or
    // later, can still read and write the store), so "jorg" finds "Jörg". Kept in step by triggers, so that no
    // path that files, renames or merges can leave them behind.
    r#"
    FOLD COLUMN messages.search_text AS (coalesce(subject, '') || ' ' || coalesce(from_name, '')
        || ' ' || coalesce(from_addr, '') || ' ' || envelope_sender);
    FOLD COLUMN candidates.search_name AS (first_name || ' ' || last_name);

    CREATE VIRTUAL TABLE message_search USING fts5(mail, candidate, tokenize = 'trigram');
    INSERT INTO message_search (rowid, mail, candidate)
        SELECT m.id, m.search_text, coalesce(c.search_name, '')
        FROM messages m LEFT JOIN candidates c ON c.id = m.candidate_id;
    CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
        INSERT INTO message_search (rowid, mail, candidate) VALUES (new.id, new.search_text,
            coalesce((SELECT search_name FROM candidates WHERE id = new.candidate_id), ''));
    END;
    CREATE TRIGGER message_search_file AFTER UPDATE OF candidate_id ON messages BEGIN
        UPDATE message_search SET candidate =
            coalesce((SELECT search_name FROM candidates WHERE id = new.candidate_id), '')
        WHERE rowid = new.id;
    END;
    CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
        DELETE FROM message_search WHERE rowid = old.id;
    END;

    -- A write that fires a trigger checks the foreign keys pointing at a
    -- new candidate (SQLite does so for any multi-write statement, a no-op
    -- unless a violation is outstanding); these two were the ones without
    -- an index, and erasing a candidate will need them too.
    CREATE INDEX message_suggestions_candidate ON message_suggestions(candidate_id);
    CREATE INDEX candidates_merged_into ON candidates(merged_into);

    CREATE VIRTUAL TABLE candidate_search USING fts5(name, addresses, tokenize = 'trigram');
    INSERT INTO candidate_search (rowid, name, addresses)
        SELECT c.id, c.search_name,
               coalesce((SELECT group_concat(a.address_key, ' ') FROM candidate_addresses a WHERE a.candidate_id = c.id), '')
        FROM candidates c;
    CREATE TRIGGER candidate_search_insert AFTER INSERT ON candidates BEGIN
        INSERT INTO candidate_search (rowid, name, addresses) VALUES (new.id, new.search_name, '');
    END;
    CREATE TRIGGER candidate_search_rename AFTER UPDATE OF first_name, last_name ON candidates BEGIN
        UPDATE candidate_search SET name = new.search_name WHERE rowid = new.id;
        UPDATE message_search SET candidate = new.search_name
            WHERE rowid IN (SELECT id FROM messages WHERE candidate_id = new.id);
    END;
    CREATE TRIGGER candidate_search_delete AFTER DELETE ON candidates BEGIN
        DELETE FROM candidate_search WHERE rowid = old.id;
    END;
    CREATE TRIGGER candidate_search_address_added AFTER INSERT ON candidate_addresses BEGIN
        UPDATE candidate_search SET addresses = coalesce((SELECT group_concat(address_key, ' ')
            FROM candidate_addresses WHERE candidate_id = new.candidate_id), '') WHERE rowid = new.candidate_id;
    END;
    CREATE TRIGGER candidate_search_address_removed AFTER DELETE ON candidate_addresses BEGIN
        UPDATE candidate_search SET addresses = coalesce((SELECT group_concat(address_key, ' ')
            FROM candidate_addresses WHERE candidate_id = old.candidate_id), '') WHERE rowid = old.candidate_id;
    END;
    "#,
    // 19: a mail enters the search index later, in batches, not in the
    // transaction that files it. Migration 18 indexed each mail at insert
    // and again when filing set its candidate: the FTS5 segments written at
    // every commit cost 5 KB ingest a fifth of its speed, and indexing once
    // at filing still cost the same (BENCHMARKS.md, "What the search index
    // costs ingest"). Now filing only notes the mail in `search_backlog`;
    // the writer indexes the backlog about once a second, hundreds of mails
    // in one transaction (`search::index_backlog`), and a search reads the
    // backlog's few mails row by row, so it finds a mail the moment it is
    // filed. A pending mail (stored, not yet filed) is in neither.
    // The folded text of a mail is no longer a generated column: SQLite
    // computed its 130 `replace` calls at every insert and update of a
    // mail, a tenth of the writer's time (perf); the writer folds it once,
    // when it indexes the mail (`search::MAIL_TEXT`).
    r#"
    DROP TRIGGER message_search_insert;
    DROP TRIGGER message_search_file;
    UNFOLD COLUMN messages.search_text;
    DELETE FROM message_search WHERE rowid IN (SELECT id FROM messages WHERE assignment = 'pending');
    CREATE TABLE search_backlog (message_id INTEGER PRIMARY KEY);
    CREATE TRIGGER message_search_insert AFTER INSERT ON messages WHEN new.assignment <> 'pending' BEGIN
        INSERT OR IGNORE INTO search_backlog (message_id) VALUES (new.id);
    END;
    CREATE TRIGGER message_search_filed AFTER UPDATE OF assignment ON messages
        WHEN old.assignment = 'pending' AND new.assignment <> 'pending' BEGIN
        INSERT OR IGNORE INTO search_backlog (message_id) VALUES (new.id);
    END;
    CREATE TRIGGER message_search_moved AFTER UPDATE OF candidate_id ON messages
        WHEN old.assignment <> 'pending' AND old.candidate_id IS NOT new.candidate_id BEGIN
        UPDATE message_search SET candidate =
            coalesce((SELECT search_name FROM candidates WHERE id = new.candidate_id), '')
        WHERE rowid = new.id;
    END;
    CREATE TRIGGER search_backlog_delete AFTER DELETE ON messages BEGIN
        DELETE FROM search_backlog WHERE message_id = old.id;
    END;
    -- The candidates of a user's subsidiaries, for the inbox of a user
    -- whose subsidiaries have few applications (`Driver::Visible`).
    CREATE INDEX applications_subsidiary ON applications(subsidiary, candidate_id);
    "#,
];

/// Page size of a new database. Measured (BENCHMARKS.md): 16 KiB pages cut
/// the system calls per 1 MB mail by four and raised 1 MB ingest by about a
/// fifth, but every commit of small mails then writes 16 KiB per touched
/// index page, and 5 KB ingest at one session fell by more than a quarter.
/// Most recruiting mail is small, so the store keeps SQLite's 4 KiB.
pub(super) const PAGE_SIZE: i64 = 4096;

/// Opens (creating if needed) the database file and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut conn = Connection::open(path)
        .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Only a new, empty database takes it (before WAL mode is set).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint and statement journals in memory: no temporary file created
    // and removed for every batch (they only serve a rollback, never a crash).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Statements are prepared once per connection (`Cached`, `prepare_cached`).
    conn.set_prepared_statement_cache_capacity(256);
    // ... and stay prepared: by default SQLite prepares a statement again
    // whenever a new value is bound where the value could change the plan
    // (`x = ?1 … ORDER BY`, measured: every filing parsed three statements
    // again, a tenth of the writer's time). The store's plans do not
    // depend on bound values (no statistics, no LIKE on a parameter).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    super::search::add_fold_function(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError(format!(
            "database schema version {version} is newer than this jobmail ({known}); upgrade jobmail"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // UNFOLD first: `FOLD COLUMN` would read its mark as its own.
        let sql = super::search::expand_fold(&super::search::expand_unfold(&tx, sql)?);
        tx.execute_batch(&sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store from before the search indexes gets them filled on upgrade,
    /// and the triggers keep them in step from then on.
    #[test]
    fn an_upgraded_store_finds_its_old_mail_and_keeps_the_index_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("j.db")).unwrap();
        super::super::search::add_fold_function(&conn).unwrap();
        let before_search = 17;
        for (i, sql) in MIGRATIONS.iter().enumerate().take(before_search) {
            conn.execute_batch(&super::super::search::expand_fold(sql))
                .unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES (7, 'Jörg', 'Weiß', 0);
             INSERT INTO candidate_addresses VALUES (7, 'joerg@example.org', 'joerg@example.org', 0);
             INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                                   size, sha256, from_name, from_addr, subject, candidate_id, assignment)
             VALUES (1, 0, 's', 'joerg@example.org', '127.0.0.1', 'h', 1, 'x', 'J. W.',
                     'joerg@example.org', 'Initiativbewerbung', 7, 'assigned');
             INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                                   size, sha256, subject) VALUES (3, 0, 's', '', '', '', 1, 'z', 'Anfrage');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let find = |conn: &Connection, table: &str, q: &str| -> Vec<i64> {
            let sql = format!("SELECT rowid FROM {table} WHERE {table} MATCH ?1 ORDER BY rowid");
            let mut stmt = conn.prepare(&sql).unwrap();
            stmt.query_map([q], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<i64>>>()
                .unwrap()
        };
        assert_eq!(find(&conn, "message_search", "\"jorg weiss\""), [1]);
        assert_eq!(find(&conn, "message_search", "\"initiativ\""), [1]);
        // A mail's folded text is no generated column any more (the writer
        // folds it when it indexes); a candidate's name still is.
        let columns = |table: &str| -> Vec<String> {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE name LIKE 'search%'")
                .unwrap();
            stmt.query_map([table], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<String>>>()
                .unwrap()
        };
        assert!(columns("messages").is_empty(), "{:?}", columns("messages"));
        assert!(columns("candidates").contains(&"search_name".to_string()));
        assert_eq!(find(&conn, "candidate_search", "\"example.org\""), [7]);
        let backlog = |conn: &Connection| -> Vec<i64> {
            let mut stmt = conn
                .prepare("SELECT message_id FROM search_backlog ORDER BY message_id")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<i64>>>()
                .unwrap()
        };
        let index = |conn: &mut Connection| super::super::search::index_backlog(conn, 100).unwrap();
        // A pending mail (stored, not filed) waits in the backlog once it
        // is filed, and is indexed by the next pass.
        assert!(find(&conn, "message_search", "\"anfrage\"").is_empty());
        assert!(backlog(&conn).is_empty());
        conn.execute_batch("UPDATE messages SET assignment = 'unassigned' WHERE id = 3")
            .unwrap();
        assert_eq!(backlog(&conn), [3]);
        assert!(find(&conn, "message_search", "\"anfrage\"").is_empty());
        assert_eq!(index(&mut conn), 1);
        assert_eq!(find(&conn, "message_search", "\"anfrage\""), [3]);
        assert!(backlog(&conn).is_empty());
        // A new mail filed later, one moved while it waits, a rename, a new
        // address, an indexed mail moved.
        conn.execute_batch(
            "INSERT INTO candidates (id, first_name, last_name, created_at) VALUES (8, 'Erika', 'Muster', 0);
             INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                                   size, sha256, subject) VALUES (2, 0, 's', '', '', '', 1, 'y', 'Termin');",
        )
        .unwrap();
        assert!(backlog(&conn).is_empty());
        conn.execute_batch(
            "UPDATE messages SET candidate_id = 8, assignment = 'assigned' WHERE id = 2;
             INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                                   size, sha256, subject, candidate_id, assignment)
                 VALUES (4, 0, 's', '', '', '', 1, 'w', 'Nachtrag', 8, 'assigned');
             UPDATE messages SET candidate_id = 7 WHERE id = 4;
             UPDATE messages SET candidate_id = 7 WHERE id = 3;
             UPDATE candidates SET first_name = 'Georg' WHERE id = 7;
             INSERT INTO candidate_addresses VALUES (8, 'e@muster.example', 'e@muster.example', 0);",
        )
        .unwrap();
        assert_eq!(backlog(&conn), [2, 4]);
        assert_eq!(find(&conn, "message_search", "\"georg\""), [1, 3]);
        assert_eq!(index(&mut conn), 2);
        assert_eq!(find(&conn, "message_search", "\"erika\""), [2]);
        assert_eq!(find(&conn, "message_search", "\"georg\""), [1, 3, 4]);
        // Each mail is in the index once; a deleted one leaves both.
        let rows = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM message_search", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&conn), 4);
        conn.execute_batch(
            "INSERT INTO messages (id, received_at, session_id, envelope_sender, client_addr, helo,
                                   size, sha256, subject, assignment)
                 VALUES (5, 0, 's', '', '', '', 1, 'v', 'Spam', 'unassigned');
             DELETE FROM messages WHERE id IN (4, 5);",
        )
        .unwrap();
        assert!(backlog(&conn).is_empty());
        assert_eq!(rows(&conn), 3);
        assert!(find(&conn, "message_search", "\"jorg\"").is_empty());
        assert_eq!(find(&conn, "candidate_search", "\"muster.ex\""), [8]);
        conn.execute_batch("DELETE FROM candidate_addresses WHERE candidate_id = 8")
            .unwrap();
        assert!(find(&conn, "candidate_search", "\"muster.ex\"").is_empty());
    }
}
