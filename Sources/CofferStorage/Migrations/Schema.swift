import CofferCore
import SQLKit

/// Migrations, in order. Each is a list of statements that run in one transaction and are recorded in schema_migrations.
/// The same SQL serves SQLite and PostgreSQL: times are BIGINT microseconds, money BIGINT minor units, states TEXT with
/// CHECK constraints. The database guards the invariants a bug in Swift could break (GRDB's advice): amounts, states,
/// one credit per channel trade, one entry per idempotency key, balanced foreign keys.
enum Schema {
    static let bookNames = "'cash','gift','share','frozen','advance','channel_clearing','revenue','gift_expense','adjustment','hold_control'"

    static let migrations: [Migration] = [
        .sql([
            """
            CREATE TABLE accounts (
                id TEXT PRIMARY KEY,
                type TEXT NOT NULL CHECK (type IN ('personal','enterprise')),
                entity_name TEXT NOT NULL CHECK (length(entity_name) BETWEEN 1 AND 200),
                tax_id TEXT,
                contact_email TEXT NOT NULL,
                currency TEXT NOT NULL CHECK (length(currency) = 3),
                time_zone TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                CHECK (type = 'personal' OR tax_id IS NOT NULL)
            )
            """,
            """
            CREATE TABLE users (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('owner','finance','member')),
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX users_one_owner ON users(account_id) WHERE role = 'owner'",
            """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('platform','account')),
                account_id TEXT REFERENCES accounts(id),
                user_id TEXT REFERENCES users(id),
                name TEXT NOT NULL,
                digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
                created_at BIGINT NOT NULL,
                revoked_at BIGINT,
                CHECK ((kind = 'platform' AND account_id IS NULL AND user_id IS NULL)
                    OR (kind = 'account' AND account_id IS NOT NULL AND user_id IS NOT NULL))
            )
            """,
            """
            CREATE TABLE wallets (
                account_id TEXT PRIMARY KEY REFERENCES accounts(id),
                currency TEXT NOT NULL,
                cash_minor BIGINT NOT NULL DEFAULT 0,
                gift_minor BIGINT NOT NULL DEFAULT 0 CHECK (gift_minor >= 0),
                share_minor BIGINT NOT NULL DEFAULT 0 CHECK (share_minor >= 0),
                frozen_minor BIGINT NOT NULL DEFAULT 0 CHECK (frozen_minor >= 0),
                advance_minor BIGINT NOT NULL DEFAULT 0 CHECK (advance_minor >= 0),
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE journal_entries (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                kind TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                actor TEXT NOT NULL,
                memo TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                UNIQUE (account_id, idempotency_key)
            )
            """,
            """
            CREATE TABLE postings (
                account_id TEXT NOT NULL,
                entry_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                book TEXT NOT NULL CHECK (book IN (\(bookNames))),
                amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
                PRIMARY KEY (account_id, entry_id, seq),
                FOREIGN KEY (account_id, entry_id) REFERENCES journal_entries(account_id, id)
            )
            """,
            """
            CREATE TABLE transactions (
                account_id TEXT NOT NULL,
                id TEXT NOT NULL,
                entry_id TEXT NOT NULL,
                type TEXT NOT NULL,
                amount_minor BIGINT NOT NULL,
                cash_delta_minor BIGINT NOT NULL,
                gift_delta_minor BIGINT NOT NULL,
                frozen_delta_minor BIGINT NOT NULL,
                balance_after_minor BIGINT NOT NULL,
                available_after_minor BIGINT NOT NULL,
                related_type TEXT,
                related_id TEXT,
                channel_trade_no TEXT,
                memo TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                FOREIGN KEY (account_id, entry_id) REFERENCES journal_entries(account_id, id)
            )
            """,
            """
            CREATE TABLE freezes (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                captured_minor BIGINT NOT NULL DEFAULT 0 CHECK (captured_minor >= 0 AND captured_minor <= amount_minor),
                state TEXT NOT NULL CHECK (state IN ('active','captured','released','expired')),
                expires_at BIGINT,
                reference TEXT,
                created_at BIGINT NOT NULL,
                resolved_at BIGINT,
                PRIMARY KEY (account_id, id),
                CHECK ((state = 'active') = (resolved_at IS NULL)),
                CHECK (state = 'captured' OR captured_minor = 0)
            )
            """,
            "CREATE INDEX freezes_due ON freezes(expires_at) WHERE state = 'active'",
            """
            CREATE TABLE charges (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                mode TEXT NOT NULL CHECK (mode IN ('prepaid','postpaid')),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                refunded_cash_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cash_minor BETWEEN 0 AND cash_minor),
                refunded_gift_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_gift_minor BETWEEN 0 AND gift_minor),
                reference TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                CHECK (cash_minor + gift_minor = amount_minor)
            )
            """,
            """
            CREATE TABLE recharges (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL UNIQUE,
                channel TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                state TEXT NOT NULL CHECK (state IN ('pending','paid','expired')),
                channel_trade_no TEXT,
                expires_at BIGINT NOT NULL,
                paid_at BIGINT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                UNIQUE (channel, channel_trade_no),
                CHECK ((state = 'paid') = (channel_trade_no IS NOT NULL AND paid_at IS NOT NULL))
            )
            """,
            "CREATE INDEX recharges_by_time ON recharges(account_id, created_at)",
            "CREATE INDEX recharges_pending ON recharges(expires_at) WHERE state = 'pending'",
            """
            CREATE TABLE idempotency_keys (
                account_id TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                request_hash TEXT NOT NULL,
                response_json TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, idem_key)
            )
            """,
            """
            CREATE TABLE audit_log (
                id TEXT PRIMARY KEY,
                account_id TEXT,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                detail TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
        ]),
        // 2: the payment instruction a channel gave for an order, so that reading a pending recharge does not ask the
        // channel again (a real channel's order is created once).
        .sql([
            "ALTER TABLE recharges ADD COLUMN payment_kind TEXT",
            "ALTER TABLE recharges ADD COLUMN payment_url TEXT",
        ]),
        // 3: money in without a payment channel: recharge codes (R8), bank remittances (T1), dedicated accounts and bank
        // statement lines (T2), and site messages (N). Each source row is moved to its credited state by the ledger writer
        // in the same transaction as the credit, so a code, remittance or statement line is credited at most once.
        .sql([
            """
            CREATE TABLE code_batches (
                id TEXT PRIMARY KEY,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                bucket TEXT NOT NULL CHECK (bucket IN ('cash','gift')),
                valid_until BIGINT NOT NULL,
                code_count INTEGER NOT NULL CHECK (code_count BETWEEN 1 AND 10000),
                memo TEXT,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE recharge_codes (
                id TEXT PRIMARY KEY,
                batch_id TEXT NOT NULL REFERENCES code_batches(id),
                code TEXT NOT NULL,
                digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                bucket TEXT NOT NULL CHECK (bucket IN ('cash','gift')),
                valid_until BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('unused','redeemed','voided')),
                redeemed_by TEXT REFERENCES accounts(id),
                redeemed_at BIGINT,
                CHECK ((state = 'redeemed') = (redeemed_by IS NOT NULL AND redeemed_at IS NOT NULL))
            )
            """,
            "CREATE INDEX recharge_codes_batch ON recharge_codes(batch_id, id)",
            """
            CREATE TABLE code_attempts (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX code_attempts_by_account ON code_attempts(account_id, created_at)",
            """
            CREATE TABLE remittances (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                payer_name TEXT NOT NULL CHECK (length(payer_name) BETWEEN 1 AND 200),
                payer_account TEXT NOT NULL,
                payer_bank TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                remitted_on TEXT NOT NULL,
                bank_serial TEXT,
                receipt_path TEXT NOT NULL,
                receipt_type TEXT NOT NULL CHECK (receipt_type IN ('image/png','image/jpeg','application/pdf')),
                receipt_bytes INTEGER NOT NULL CHECK (receipt_bytes BETWEEN 1 AND 5242880),
                receipt_sha256 TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending_review','approved','rejected')),
                reject_reason TEXT,
                resubmission_of TEXT REFERENCES remittances(id),
                reviewed_by TEXT,
                reviewed_at BIGINT,
                created_at BIGINT NOT NULL,
                CHECK ((state = 'rejected') = (reject_reason IS NOT NULL)),
                CHECK ((state = 'pending_review') = (reviewed_at IS NULL))
            )
            """,
            "CREATE INDEX remittances_by_account ON remittances(account_id, created_at)",
            "CREATE INDEX remittances_queue ON remittances(created_at) WHERE state = 'pending_review'",
            "CREATE UNIQUE INDEX remittances_serial_credited ON remittances(bank_serial) WHERE state = 'approved'",
            """
            CREATE TABLE dedicated_accounts (
                account_id TEXT PRIMARY KEY REFERENCES accounts(id),
                identifier TEXT NOT NULL UNIQUE CHECK (length(identifier) = 10),
                number TEXT NOT NULL UNIQUE CHECK (length(number) = 25),
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE payer_names (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
                third_party BOOLEAN NOT NULL,
                agreement_signed_at BIGINT,
                agreement_signed_by TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, name)
            )
            """,
            """
            CREATE TABLE statement_lines (
                id TEXT PRIMARY KEY,
                bank_serial TEXT NOT NULL UNIQUE,
                booked_on TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                currency TEXT NOT NULL CHECK (length(currency) = 3),
                payer_name TEXT NOT NULL,
                payer_account TEXT NOT NULL,
                payee_account TEXT NOT NULL,
                memo TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('matched','credited','to_be_confirmed','to_be_signed','held_keyword',
                                                     'held_currency','unmatched','refunded')),
                account_id TEXT REFERENCES accounts(id),
                note TEXT,
                source TEXT NOT NULL,
                imported_at BIGINT NOT NULL,
                resolved_at BIGINT,
                resolved_by TEXT,
                CHECK (state IN ('unmatched','refunded','held_currency','held_keyword') OR account_id IS NOT NULL)
            )
            """,
            "CREATE INDEX statement_lines_by_state ON statement_lines(state, imported_at)",
            "CREATE INDEX statement_lines_by_account ON statement_lines(account_id, imported_at)",
            """
            CREATE TABLE site_messages (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                kind TEXT NOT NULL,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                read_at BIGINT,
                delivered_at BIGINT
            )
            """,
            "CREATE INDEX site_messages_by_account ON site_messages(account_id, created_at)",
            "CREATE INDEX site_messages_undelivered ON site_messages(created_at) WHERE delivered_at IS NULL",
        ]),
        // 4: the console. Operators are staff logins apart from account users; sessions store the token's digest only.
        .sql([
            """
            CREATE TABLE operators (
                id TEXT PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE web_sessions (
                token_digest TEXT PRIMARY KEY,
                subject TEXT NOT NULL CHECK (subject IN ('user','operator')),
                subject_id TEXT NOT NULL,
                csrf_token TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL CHECK (expires_at > created_at)
            )
            """,
            "CREATE INDEX web_sessions_by_subject ON web_sessions(subject, subject_id)",
            "CREATE INDEX web_sessions_by_expiry ON web_sessions(expires_at)",
        ]),
        // 5: R4 recharge fees — paid on top of the amount, never credited.
        .sql([
            "ALTER TABLE recharges ADD COLUMN fee_minor BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0)",
        ]),
        // 6: R7 payers and channel refunds. A recharge may now be `refused` (paid by a payer over the limit, returned to
        // them) and records who paid. SQLite cannot change a CHECK in place, so the table is rebuilt the portable way
        // (nothing references it). Refunds are an outbox: recorded with the decision, sent and followed by the jobs loop.
        .sql([
            """
            CREATE TABLE recharges_v6 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL UNIQUE,
                channel TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                state TEXT NOT NULL CHECK (state IN ('pending','paid','expired','refused')),
                channel_trade_no TEXT,
                expires_at BIGINT NOT NULL,
                paid_at BIGINT,
                created_at BIGINT NOT NULL,
                payment_kind TEXT,
                payment_url TEXT,
                fee_minor BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
                payer_id TEXT CHECK (payer_id IS NULL OR length(payer_id) BETWEEN 1 AND 128),
                PRIMARY KEY (account_id, id),
                UNIQUE (channel, channel_trade_no),
                CHECK ((state IN ('paid','refused')) = (channel_trade_no IS NOT NULL AND paid_at IS NOT NULL))
            )
            """,
            """
            INSERT INTO recharges_v6 (account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at,
                                      created_at, payment_kind, payment_url, fee_minor)
            SELECT account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at, created_at,
                   payment_kind, payment_url, fee_minor FROM recharges
            """,
            "DROP TABLE recharges",
            "ALTER TABLE recharges_v6 RENAME TO recharges",
            "CREATE INDEX recharges_by_time ON recharges(account_id, created_at)",
            "CREATE INDEX recharges_pending ON recharges(expires_at) WHERE state = 'pending'",
            "CREATE INDEX recharges_payers ON recharges(account_id, paid_at) WHERE state = 'paid' AND payer_id IS NOT NULL",
            """
            CREATE TABLE channel_refunds (
                id TEXT PRIMARY KEY,
                account_id TEXT NOT NULL REFERENCES accounts(id),
                recharge_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                channel_trade_no TEXT NOT NULL,
                purpose TEXT NOT NULL CHECK (purpose IN ('payer_limit')),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                order_total_minor BIGINT NOT NULL CHECK (order_total_minor >= amount_minor),
                state TEXT NOT NULL CHECK (state IN ('pending','processing','succeeded','failed')),
                channel_refund_no TEXT,
                last_error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                next_attempt_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                resolved_at BIGINT,
                CHECK ((state IN ('succeeded','failed')) = (resolved_at IS NOT NULL)),
                CHECK (state <> 'succeeded' OR channel_refund_no IS NOT NULL)
            )
            """,
            // R7 returns a refused payment once.
            "CREATE UNIQUE INDEX channel_refunds_payer_limit ON channel_refunds(recharge_id) WHERE purpose = 'payer_limit'",
            "CREATE INDEX channel_refunds_due ON channel_refunds(next_attempt_at) WHERE state IN ('pending','processing')",
            "CREATE INDEX channel_refunds_by_account ON channel_refunds(account_id, created_at)",
        ]),
        // 7: one row per movement. `ledger_entries` replaces journal_entries + postings + transactions and the ledger's rows
        // of idempotency_keys: each row is one W11 record with its own balanced amount per book (CHECK: they sum to zero),
        // and an entry's first row carries its idempotency key (UNIQUE per account), the request hash and the wallet after
        // it, from which a replay's answer is rebuilt. Old rows are reshaped in Swift (LedgerRowsMigration) and checked
        // against their postings before the old tables go.
        .steps(before: [
            """
            CREATE TABLE ledger_entries (
                account_id TEXT NOT NULL,
                id TEXT NOT NULL,
                entry_id TEXT NOT NULL,
                seq INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 15),
                kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 40),
                type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 40),
                actor TEXT NOT NULL,
                amount_minor BIGINT NOT NULL,
                balance_after_minor BIGINT NOT NULL,
                available_after_minor BIGINT NOT NULL,
                cash_minor BIGINT NOT NULL,
                gift_minor BIGINT NOT NULL,
                share_minor BIGINT NOT NULL,
                frozen_minor BIGINT NOT NULL,
                advance_minor BIGINT NOT NULL,
                channel_clearing_minor BIGINT NOT NULL,
                revenue_minor BIGINT NOT NULL,
                gift_expense_minor BIGINT NOT NULL,
                adjustment_minor BIGINT NOT NULL,
                hold_control_minor BIGINT NOT NULL,
                related_type TEXT,
                related_id TEXT,
                detail_id TEXT,
                channel_trade_no TEXT,
                memo TEXT,
                created_at BIGINT NOT NULL,
                idempotency_key TEXT,
                request_hash TEXT,
                wallet_cash_minor BIGINT,
                wallet_gift_minor BIGINT,
                wallet_share_minor BIGINT,
                wallet_frozen_minor BIGINT,
                wallet_advance_minor BIGINT,
                PRIMARY KEY (account_id, id),
                UNIQUE (account_id, idempotency_key),
                CHECK (cash_minor + gift_minor + share_minor + frozen_minor + advance_minor + channel_clearing_minor
                       + revenue_minor + gift_expense_minor + adjustment_minor + hold_control_minor = 0),
                CHECK (amount_minor = cash_minor + gift_minor + share_minor - frozen_minor),
                CHECK ((seq = 0) = (idempotency_key IS NOT NULL)),
                CHECK ((idempotency_key IS NULL) = (request_hash IS NULL AND wallet_cash_minor IS NULL
                       AND wallet_gift_minor IS NULL AND wallet_share_minor IS NULL AND wallet_frozen_minor IS NULL
                       AND wallet_advance_minor IS NULL)),
                CHECK (idempotency_key IS NULL OR (wallet_gift_minor >= 0 AND wallet_share_minor >= 0
                       AND wallet_frozen_minor >= 0 AND wallet_advance_minor >= 0))
            )
            """,
        ], data: LedgerRowsMigration.run, after: [
            """
            DELETE FROM idempotency_keys WHERE EXISTS (SELECT 1 FROM ledger_entries l
              WHERE l.account_id = idempotency_keys.account_id AND l.idempotency_key = idempotency_keys.idem_key)
            """,
            "DROP TABLE transactions",
            "DROP TABLE postings",
            "DROP TABLE journal_entries",
        ]),
        // 8: site messages from ledger events keep the event's parameters (JSON object of strings), so that the console
        // renders them from its catalogs in the reader's language.
        .sql([
            "ALTER TABLE site_messages ADD COLUMN parameters TEXT",
        ]),
        // 9: every account-owned table keyed by account first (the rule a distributed PostgreSQL such as Citus imposes).
        // Values unique across accounts, and ids named without their account (by a channel, an operator's queue, a
        // login), move to `lookups`: one row per value, keyed by (kind, value), pointing at the account and the row.
        // Tables are rebuilt the portable way; a web session of a user now carries the user's account.
        .sql([
            """
            CREATE TABLE lookups (
                kind TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 40),
                value TEXT NOT NULL CHECK (length(value) BETWEEN 1 AND 400),
                account_id TEXT NOT NULL REFERENCES accounts(id),
                target_id TEXT NOT NULL,
                PRIMARY KEY (kind, value)
            )
            """,
            "INSERT INTO lookups (kind, value, account_id, target_id) SELECT 'email', email, account_id, id FROM users",
            "INSERT INTO lookups (kind, value, account_id, target_id) SELECT 'recharge', id, account_id, id FROM recharges",
            """
            INSERT INTO lookups (kind, value, account_id, target_id)
            SELECT 'channel_trade', channel || ':' || channel_trade_no, account_id, id FROM recharges WHERE channel_trade_no IS NOT NULL
            """,
            "INSERT INTO lookups (kind, value, account_id, target_id) SELECT 'remittance', id, account_id, id FROM remittances",
            """
            INSERT INTO lookups (kind, value, account_id, target_id)
            SELECT 'bank_serial', bank_serial, account_id, id FROM remittances WHERE state = 'approved' AND bank_serial IS NOT NULL
            """,
            """
            INSERT INTO lookups (kind, value, account_id, target_id)
            SELECT 'bank_serial', bank_serial, account_id, id FROM statement_lines WHERE state = 'credited'
            """,
            "INSERT INTO lookups (kind, value, account_id, target_id) SELECT 'channel_refund', id, account_id, id FROM channel_refunds",
            """
            INSERT INTO lookups (kind, value, account_id, target_id)
            SELECT 'dedicated_identifier', identifier, account_id, account_id FROM dedicated_accounts
            """,
            """
            INSERT INTO lookups (kind, value, account_id, target_id)
            SELECT 'dedicated_number', number, account_id, account_id FROM dedicated_accounts
            """,
            "ALTER TABLE web_sessions ADD COLUMN account_id TEXT",
            """
            UPDATE web_sessions SET account_id = (SELECT u.account_id FROM users u WHERE u.id = web_sessions.subject_id)
            WHERE subject = 'user'
            """,
            """
            CREATE TABLE users_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                email TEXT NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('owner','finance','member')),
                password_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id)
            )
            """,
            """
            INSERT INTO users_v9 (account_id, id, email, name, role, password_hash, created_at)
            SELECT account_id, id, email, name, role, password_hash, created_at FROM users
            """,
            // Keys are looked up by digest (the table is that lookup); platform keys belong to no account.
            """
            CREATE TABLE api_keys_v9 (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('platform','account')),
                account_id TEXT REFERENCES accounts(id),
                user_id TEXT,
                name TEXT NOT NULL,
                digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
                created_at BIGINT NOT NULL,
                revoked_at BIGINT,
                FOREIGN KEY (account_id, user_id) REFERENCES users_v9(account_id, id),
                CHECK ((kind = 'platform' AND account_id IS NULL AND user_id IS NULL)
                    OR (kind = 'account' AND account_id IS NOT NULL AND user_id IS NOT NULL))
            )
            """,
            """
            INSERT INTO api_keys_v9 (id, kind, account_id, user_id, name, digest, created_at, revoked_at)
            SELECT id, kind, account_id, user_id, name, digest, created_at, revoked_at FROM api_keys
            """,
            "DROP TABLE api_keys",
            "DROP TABLE users",
            "ALTER TABLE users_v9 RENAME TO users",
            "ALTER TABLE api_keys_v9 RENAME TO api_keys",
            "CREATE UNIQUE INDEX users_one_owner ON users(account_id) WHERE role = 'owner'",
            """
            CREATE TABLE code_attempts_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id)
            )
            """,
            "INSERT INTO code_attempts_v9 (account_id, id, created_at) SELECT account_id, id, created_at FROM code_attempts",
            "DROP TABLE code_attempts",
            "ALTER TABLE code_attempts_v9 RENAME TO code_attempts",
            "CREATE INDEX code_attempts_by_account ON code_attempts(account_id, created_at)",
            """
            CREATE TABLE remittances_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                payer_name TEXT NOT NULL CHECK (length(payer_name) BETWEEN 1 AND 200),
                payer_account TEXT NOT NULL,
                payer_bank TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                remitted_on TEXT NOT NULL,
                bank_serial TEXT,
                receipt_path TEXT NOT NULL,
                receipt_type TEXT NOT NULL CHECK (receipt_type IN ('image/png','image/jpeg','application/pdf')),
                receipt_bytes INTEGER NOT NULL CHECK (receipt_bytes BETWEEN 1 AND 5242880),
                receipt_sha256 TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending_review','approved','rejected')),
                reject_reason TEXT,
                resubmission_of TEXT,
                reviewed_by TEXT,
                reviewed_at BIGINT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                FOREIGN KEY (account_id, resubmission_of) REFERENCES remittances_v9(account_id, id),
                CHECK ((state = 'rejected') = (reject_reason IS NOT NULL)),
                CHECK ((state = 'pending_review') = (reviewed_at IS NULL))
            )
            """,
            """
            INSERT INTO remittances_v9 (account_id, id, payer_name, payer_account, payer_bank, amount_minor, remitted_on, bank_serial,
              receipt_path, receipt_type, receipt_bytes, receipt_sha256, state, reject_reason, resubmission_of, reviewed_by, reviewed_at,
              created_at)
            SELECT account_id, id, payer_name, payer_account, payer_bank, amount_minor, remitted_on, bank_serial, receipt_path,
              receipt_type, receipt_bytes, receipt_sha256, state, reject_reason, resubmission_of, reviewed_by, reviewed_at, created_at
            FROM remittances ORDER BY created_at, id
            """,
            "DROP TABLE remittances",
            "ALTER TABLE remittances_v9 RENAME TO remittances",
            "CREATE INDEX remittances_by_account ON remittances(account_id, created_at)",
            "CREATE INDEX remittances_queue ON remittances(created_at) WHERE state = 'pending_review'",
            "CREATE INDEX remittances_by_serial ON remittances(bank_serial) WHERE bank_serial IS NOT NULL",
            """
            CREATE TABLE dedicated_accounts_v9 (
                account_id TEXT PRIMARY KEY REFERENCES accounts(id),
                identifier TEXT NOT NULL CHECK (length(identifier) = 10),
                number TEXT NOT NULL CHECK (length(number) = 25),
                created_at BIGINT NOT NULL
            )
            """,
            """
            INSERT INTO dedicated_accounts_v9 (account_id, identifier, number, created_at)
            SELECT account_id, identifier, number, created_at FROM dedicated_accounts
            """,
            "DROP TABLE dedicated_accounts",
            "ALTER TABLE dedicated_accounts_v9 RENAME TO dedicated_accounts",
            """
            CREATE TABLE site_messages_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                kind TEXT NOT NULL,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                read_at BIGINT,
                delivered_at BIGINT,
                parameters TEXT,
                PRIMARY KEY (account_id, id)
            )
            """,
            """
            INSERT INTO site_messages_v9 (account_id, id, kind, title, body, created_at, read_at, delivered_at, parameters)
            SELECT account_id, id, kind, title, body, created_at, read_at, delivered_at, parameters FROM site_messages
            """,
            "DROP TABLE site_messages",
            "ALTER TABLE site_messages_v9 RENAME TO site_messages",
            "CREATE INDEX site_messages_undelivered ON site_messages(created_at) WHERE delivered_at IS NULL",
            """
            CREATE TABLE channel_refunds_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                recharge_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                channel_trade_no TEXT NOT NULL,
                purpose TEXT NOT NULL CHECK (purpose IN ('payer_limit')),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                order_total_minor BIGINT NOT NULL CHECK (order_total_minor >= amount_minor),
                state TEXT NOT NULL CHECK (state IN ('pending','processing','succeeded','failed')),
                channel_refund_no TEXT,
                last_error TEXT,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                next_attempt_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                resolved_at BIGINT,
                PRIMARY KEY (account_id, id),
                CHECK ((state IN ('succeeded','failed')) = (resolved_at IS NOT NULL)),
                CHECK (state <> 'succeeded' OR channel_refund_no IS NOT NULL)
            )
            """,
            """
            INSERT INTO channel_refunds_v9 (account_id, id, recharge_id, channel, channel_trade_no, purpose, amount_minor,
              order_total_minor, state, channel_refund_no, last_error, attempts, next_attempt_at, created_at, resolved_at)
            SELECT account_id, id, recharge_id, channel, channel_trade_no, purpose, amount_minor, order_total_minor, state,
              channel_refund_no, last_error, attempts, next_attempt_at, created_at, resolved_at FROM channel_refunds
            """,
            "DROP TABLE channel_refunds",
            "ALTER TABLE channel_refunds_v9 RENAME TO channel_refunds",
            "CREATE UNIQUE INDEX channel_refunds_payer_limit ON channel_refunds(account_id, recharge_id) WHERE purpose = 'payer_limit'",
            "CREATE INDEX channel_refunds_due ON channel_refunds(next_attempt_at) WHERE state IN ('pending','processing')",
            "CREATE INDEX channel_refunds_by_account ON channel_refunds(account_id, created_at)",
            """
            CREATE TABLE recharges_v9 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                channel TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                state TEXT NOT NULL CHECK (state IN ('pending','paid','expired','refused')),
                channel_trade_no TEXT,
                expires_at BIGINT NOT NULL,
                paid_at BIGINT,
                created_at BIGINT NOT NULL,
                payment_kind TEXT,
                payment_url TEXT,
                fee_minor BIGINT NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
                payer_id TEXT CHECK (payer_id IS NULL OR length(payer_id) BETWEEN 1 AND 128),
                PRIMARY KEY (account_id, id),
                CHECK ((state IN ('paid','refused')) = (channel_trade_no IS NOT NULL AND paid_at IS NOT NULL))
            )
            """,
            """
            INSERT INTO recharges_v9 (account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at,
                                      created_at, payment_kind, payment_url, fee_minor, payer_id)
            SELECT account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at, created_at,
                   payment_kind, payment_url, fee_minor, payer_id FROM recharges
            """,
            "DROP TABLE recharges",
            "ALTER TABLE recharges_v9 RENAME TO recharges",
            "CREATE INDEX recharges_by_time ON recharges(account_id, created_at)",
            "CREATE INDEX recharges_pending ON recharges(expires_at) WHERE state = 'pending'",
            "CREATE INDEX recharges_payers ON recharges(account_id, paid_at) WHERE state = 'paid' AND payer_id IS NOT NULL",
        ]),
        // 10: the product catalog (postpaid billing and orders): a product and its prepaid plans, versioned.
        .sql([
            """
            CREATE TABLE products (
                id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
                name_zh TEXT NOT NULL CHECK (length(name_zh) BETWEEN 1 AND 100),
                name_en TEXT NOT NULL CHECK (length(name_en) BETWEEN 1 AND 100),
                settlement_cycle TEXT NOT NULL CHECK (settlement_cycle IN ('hourly','daily','monthly')),
                tax_category TEXT NOT NULL CHECK (tax_category IN ('cloud_service','software')),
                version BIGINT NOT NULL CHECK (version >= 1),
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE product_plans (
                product_id TEXT NOT NULL REFERENCES products(id),
                seq INTEGER NOT NULL CHECK (seq BETWEEN 0 AND 49),
                specification TEXT NOT NULL CHECK (length(specification) BETWEEN 1 AND 100),
                monthly_price_minor BIGINT NOT NULL CHECK (monthly_price_minor > 0),
                PRIMARY KEY (product_id, seq),
                UNIQUE (product_id, specification)
            )
            """,
        ]),
        // 11: postpaid billing — projects, resources, usage records, settlements with their lines, settlement runs and
        // the statistic period (B1–B5). Account-owned tables are keyed by account first; usage rows carry no foreign key
        // (ingestion checks its resources in one read per request, like the ledger's rows).
        .sql([
            """
            CREATE TABLE projects (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                UNIQUE (account_id, name)
            )
            """,
            """
            CREATE TABLE resources (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 100),
                product_id TEXT NOT NULL REFERENCES products(id),
                name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
                region TEXT CHECK (region IS NULL OR length(region) BETWEEN 1 AND 64),
                project_id TEXT,
                tags TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                FOREIGN KEY (account_id, project_id) REFERENCES projects(account_id, id)
            )
            """,
            """
            CREATE TABLE usage_records (
                account_id TEXT NOT NULL,
                id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 100),
                resource_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                component TEXT NOT NULL CHECK (length(component) BETWEEN 1 AND 64),
                unit TEXT NOT NULL CHECK (length(unit) BETWEEN 1 AND 32),
                quantity_units BIGINT NOT NULL CHECK (quantity_units >= 0),
                unit_price_units BIGINT NOT NULL CHECK (unit_price_units >= 0),
                list_unit_price_units BIGINT CHECK (list_unit_price_units IS NULL OR list_unit_price_units >= 0),
                amount_units BIGINT NOT NULL CHECK (amount_units >= 0),
                list_amount_units BIGINT CHECK ((list_amount_units IS NULL) = (list_unit_price_units IS NULL)),
                period_start BIGINT NOT NULL,
                period_end BIGINT NOT NULL CHECK (period_end >= period_start),
                region TEXT,
                tags TEXT,
                cycle_start BIGINT NOT NULL,
                cycle_end BIGINT NOT NULL CHECK (cycle_end > cycle_start),
                content_hash TEXT NOT NULL CHECK (length(content_hash) = 64),
                received_at BIGINT NOT NULL,
                settlement_id TEXT,
                PRIMARY KEY (account_id, id)
            )
            """,
            "CREATE INDEX usage_unsettled ON usage_records(account_id, resource_id, cycle_start) WHERE settlement_id IS NULL",
            """
            CREATE TABLE settlements (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                run_id TEXT NOT NULL,
                resource_id TEXT NOT NULL,
                resource_name TEXT NOT NULL,
                product_id TEXT NOT NULL,
                project_id TEXT,
                region TEXT,
                tags TEXT,
                cycle_start BIGINT NOT NULL,
                cycle_end BIGINT NOT NULL CHECK (cycle_end > cycle_start),
                deduction_minor BIGINT NOT NULL CHECK (deduction_minor >= 0),
                remainder_units BIGINT NOT NULL CHECK (remainder_units BETWEEN -500000 AND 500000),
                charge_id TEXT CHECK ((charge_id IS NULL) = (deduction_minor = 0)),
                state TEXT NOT NULL CHECK (state IN ('claimed','charged')),
                deduction_month TEXT NOT NULL CHECK (length(deduction_month) = 7),
                billing_month TEXT NOT NULL CHECK (length(billing_month) = 7),
                record_count INTEGER NOT NULL CHECK (record_count > 0),
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id)
            )
            """,
            "CREATE INDEX settlements_uncharged ON settlements(created_at) WHERE state = 'claimed'",
            "CREATE INDEX settlements_by_deduction_month ON settlements(account_id, deduction_month)",
            "CREATE INDEX settlements_by_billing_month ON settlements(account_id, billing_month)",
            "CREATE INDEX settlements_by_cycle ON settlements(account_id, cycle_start)",
            """
            CREATE TABLE settlement_lines (
                account_id TEXT NOT NULL,
                settlement_id TEXT NOT NULL,
                component TEXT NOT NULL,
                unit TEXT NOT NULL,
                quantity TEXT NOT NULL,
                amount_units BIGINT NOT NULL CHECK (amount_units >= 0),
                list_amount_units BIGINT CHECK (list_amount_units IS NULL OR list_amount_units >= 0),
                record_count INTEGER NOT NULL CHECK (record_count > 0),
                PRIMARY KEY (account_id, settlement_id, component, unit)
            )
            """,
            """
            CREATE TABLE settlement_runs (
                id TEXT PRIMARY KEY,
                idempotency_key TEXT UNIQUE,
                request_hash TEXT NOT NULL,
                until_at BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('running','finished')),
                cycles INTEGER NOT NULL CHECK (cycles >= 0),
                records BIGINT NOT NULL CHECK (records >= 0),
                failed INTEGER NOT NULL CHECK (failed >= 0),
                actor TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                finished_at BIGINT,
                CHECK ((state = 'finished') = (finished_at IS NOT NULL))
            )
            """,
            "CREATE INDEX settlement_runs_by_time ON settlement_runs(started_at)",
            """
            CREATE TABLE bill_compensations (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                settlement_id TEXT NOT NULL,
                refund_id TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
                actor TEXT NOT NULL,
                month TEXT NOT NULL CHECK (length(month) = 7),
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                UNIQUE (account_id, refund_id),
                CHECK (cash_minor + gift_minor = amount_minor)
            )
            """,
            "CREATE INDEX bill_compensations_by_month ON bill_compensations(account_id, month)",
            """
            CREATE TABLE bill_settings (
                account_id TEXT PRIMARY KEY REFERENCES accounts(id),
                statistic_period TEXT NOT NULL CHECK (statistic_period IN ('deduction','billing')),
                switch_month TEXT CHECK (switch_month IS NULL OR length(switch_month) = 7),
                updated_at BIGINT NOT NULL,
                CHECK ((statistic_period = 'billing') = (switch_month IS NOT NULL))
            )
            """,
        ]),
        // 12: prepaid orders, merged payments and coupons (orders issue: O1, O2, W7, C1–C8).
        .sql([
            """
            CREATE TABLE orders (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                type TEXT NOT NULL CHECK (type IN ('new','renewal','upgrade')),
                product_id TEXT NOT NULL REFERENCES products(id),
                product_version BIGINT NOT NULL,
                specification TEXT NOT NULL CHECK (length(specification) BETWEEN 1 AND 100),
                duration_months INTEGER NOT NULL CHECK (duration_months BETWEEN 1 AND 60),
                resource_id TEXT,
                list_price_minor BIGINT NOT NULL CHECK (list_price_minor > 0),
                discount_minor BIGINT NOT NULL CHECK (discount_minor >= 0),
                due_minor BIGINT NOT NULL CHECK (due_minor > 0),
                coupons_allowed BOOLEAN NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('unpaid','paid','delivered','delivery_failed','cancelled','expired')),
                expires_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                payment_id TEXT,
                coupon_minor BIGINT NOT NULL CHECK (coupon_minor >= 0),
                frozen_minor BIGINT NOT NULL CHECK (frozen_minor >= 0),
                freeze_id TEXT,
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                paid_at BIGINT,
                resolved_at BIGINT,
                reference TEXT CHECK (reference IS NULL OR length(reference) BETWEEN 1 AND 100),
                PRIMARY KEY (account_id, id),
                CHECK (due_minor = list_price_minor - discount_minor),
                CHECK ((payment_id IS NULL) = (state IN ('unpaid','cancelled','expired'))),
                CHECK (payment_id IS NULL OR coupon_minor + frozen_minor = due_minor),
                CHECK ((freeze_id IS NOT NULL) = (frozen_minor > 0)),
                CHECK (state <> 'delivered' OR cash_minor + gift_minor = frozen_minor)
            )
            """,
            "CREATE INDEX orders_by_created ON orders(account_id, created_at, id)",
            "CREATE INDEX orders_unpaid_by_expiry ON orders(expires_at) WHERE state = 'unpaid'",
            """
            CREATE TABLE order_payments (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                order_ids TEXT NOT NULL,
                coupon_ids TEXT NOT NULL,
                due_minor BIGINT NOT NULL CHECK (due_minor > 0),
                coupon_minor BIGINT NOT NULL CHECK (coupon_minor >= 0),
                frozen_minor BIGINT NOT NULL CHECK (frozen_minor >= 0),
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                CHECK (coupon_minor + frozen_minor = due_minor)
            )
            """,
            """
            CREATE TABLE coupons (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('voucher','cash','discount')),
                value_minor BIGINT CHECK (value_minor IS NULL OR value_minor > 0),
                percent_off INTEGER CHECK (percent_off IS NULL OR percent_off BETWEEN 1 AND 99),
                remaining_minor BIGINT NOT NULL CHECK (remaining_minor >= 0),
                single_use BOOLEAN NOT NULL,
                conditions TEXT NOT NULL,
                valid_from BIGINT NOT NULL,
                valid_until BIGINT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('unused','used')),
                source TEXT NOT NULL CHECK (length(source) BETWEEN 1 AND 120),
                created_at BIGINT NOT NULL,
                used_at BIGINT,
                PRIMARY KEY (account_id, id),
                CHECK (valid_until > valid_from),
                CHECK ((kind = 'discount') = (percent_off IS NOT NULL)),
                CHECK (kind = 'discount' OR (value_minor IS NOT NULL AND remaining_minor <= value_minor)),
                CHECK (kind <> 'discount' OR remaining_minor = 0)
            )
            """,
            """
            CREATE TABLE coupon_uses (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                coupon_id TEXT NOT NULL,
                payment_id TEXT NOT NULL,
                order_id TEXT NOT NULL,
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                returned_at BIGINT,
                PRIMARY KEY (account_id, coupon_id, payment_id, order_id)
            )
            """,
            "CREATE INDEX coupon_uses_by_order ON coupon_uses(account_id, order_id)",
            """
            CREATE TABLE coupon_batches (
                id TEXT PRIMARY KEY,
                template TEXT NOT NULL,
                code_count INTEGER NOT NULL CHECK (code_count BETWEEN 1 AND 10000),
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE coupon_codes (
                code_digest TEXT PRIMARY KEY CHECK (length(code_digest) = 64),
                batch_id TEXT NOT NULL REFERENCES coupon_batches(id),
                redeemed_account_id TEXT REFERENCES accounts(id),
                redeemed_coupon_id TEXT,
                redeemed_at BIGINT,
                CHECK ((redeemed_account_id IS NULL) = (redeemed_coupon_id IS NULL))
            )
            """,
        ]),
        // 13: webhooks to the provider (N2): endpoints, the event outbox, the delivery log.
        .sql([
            """
            CREATE TABLE webhook_endpoints (
                id TEXT PRIMARY KEY,
                url TEXT NOT NULL CHECK (length(url) BETWEEN 8 AND 500),
                events TEXT NOT NULL CHECK (length(events) >= 1),
                secret TEXT NOT NULL,
                enabled BOOLEAN NOT NULL,
                description TEXT,
                created_by TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE webhook_events (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 60),
                data TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                fanned_out BOOLEAN NOT NULL,
                PRIMARY KEY (account_id, id)
            )
            """,
            "CREATE INDEX webhook_events_unsent ON webhook_events(created_at) WHERE NOT fanned_out",
            """
            CREATE TABLE webhook_deliveries (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                event_id TEXT NOT NULL,
                endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
                event_type TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending','delivered','failed')),
                attempts INTEGER NOT NULL CHECK (attempts >= 0),
                next_attempt_at BIGINT NOT NULL,
                last_status INTEGER,
                last_error TEXT,
                created_at BIGINT NOT NULL,
                delivered_at BIGINT,
                PRIMARY KEY (account_id, event_id, endpoint_id),
                CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
            )
            """,
            "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending'",
            "CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(created_at)",
        ]),
        // 14: prepaid resources' terms (orders issue: O3–O6).
        .sql([
            """
            CREATE TABLE prepaid_terms (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                resource_id TEXT NOT NULL,
                product_id TEXT NOT NULL REFERENCES products(id),
                specification TEXT NOT NULL CHECK (length(specification) BETWEEN 1 AND 100),
                state TEXT NOT NULL CHECK (state IN ('active','suspended','reclaimed')),
                auto_renew BOOLEAN NOT NULL,
                starts_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                suspended_at BIGINT,
                reclaimed_at BIGINT,
                renew_attempt_day TEXT CHECK (renew_attempt_day IS NULL OR length(renew_attempt_day) = 10),
                reminded_day TEXT CHECK (reminded_day IS NULL OR length(reminded_day) = 10),
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, resource_id),
                CHECK (expires_at > starts_at),
                CHECK ((state = 'suspended') = (suspended_at IS NOT NULL) OR state = 'reclaimed'),
                CHECK ((state = 'reclaimed') = (reclaimed_at IS NOT NULL))
            )
            """,
            "CREATE INDEX prepaid_terms_by_expiry ON prepaid_terms(expires_at) WHERE state <> 'reclaimed'",
        ]),
        // 15: refunds (退订) of prepaid resources (O8, C7), and the stretch of the term each order paid for.
        .sql([
            "ALTER TABLE orders ADD COLUMN term_from BIGINT",
            "ALTER TABLE orders ADD COLUMN term_to BIGINT",
            "CREATE INDEX orders_by_resource ON orders(account_id, resource_id)",
            """
            CREATE TABLE resource_refunds (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                resource_id TEXT NOT NULL,
                product_id TEXT NOT NULL,
                specification TEXT NOT NULL,
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                cash_coupon_minor BIGINT NOT NULL CHECK (cash_coupon_minor >= 0),
                lines TEXT NOT NULL,
                reason TEXT CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 200),
                actor TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                UNIQUE (account_id, resource_id)
            )
            """,
        ]),
        // 16: postpaid coupons paid by settlements (C2): a charge records what coupons paid of it, and a coupon its payment
        // type as a column so that a settlement finds the account's postpaid ones by index. Coupons stored before this
        // were all prepaid (postpaid grants were refused), hence the default.
        .sql([
            """
            CREATE TABLE charges_v16 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                mode TEXT NOT NULL CHECK (mode IN ('prepaid','postpaid')),
                amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                coupon_minor BIGINT NOT NULL CHECK (coupon_minor >= 0),
                refunded_cash_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_cash_minor BETWEEN 0 AND cash_minor),
                refunded_gift_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_gift_minor BETWEEN 0 AND gift_minor),
                reference TEXT,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (account_id, id),
                CHECK (cash_minor + gift_minor + coupon_minor = amount_minor),
                CHECK (coupon_minor = 0 OR mode = 'postpaid')
            )
            """,
            """
            INSERT INTO charges_v16 (account_id, id, mode, amount_minor, cash_minor, gift_minor, coupon_minor, refunded_cash_minor,
                                     refunded_gift_minor, reference, created_at)
            SELECT account_id, id, mode, amount_minor, cash_minor, gift_minor, 0, refunded_cash_minor, refunded_gift_minor, reference,
                   created_at FROM charges
            """,
            "DROP TABLE charges",
            "ALTER TABLE charges_v16 RENAME TO charges",
            "ALTER TABLE coupons ADD COLUMN payment_type TEXT NOT NULL DEFAULT 'prepaid' CHECK (payment_type IN ('prepaid','postpaid'))",
            "CREATE INDEX coupons_usable ON coupons(account_id, payment_type, valid_until) WHERE state = 'unused'",
        ]),
        // 17: a refund (退订, O8) is also an order of type `refund`, state `refunded`, in the orders list: amounts are what
        // went back (cash + gift + cash coupons = due), no duration, no payment.
        .sql([
            """
            CREATE TABLE orders_v17 (
                account_id TEXT NOT NULL REFERENCES accounts(id),
                id TEXT NOT NULL,
                type TEXT NOT NULL CHECK (type IN ('new','renewal','upgrade','refund')),
                product_id TEXT NOT NULL REFERENCES products(id),
                product_version BIGINT NOT NULL,
                specification TEXT NOT NULL CHECK (length(specification) BETWEEN 1 AND 100),
                duration_months INTEGER NOT NULL CHECK (duration_months BETWEEN 1 AND 60 OR (type = 'refund' AND duration_months = 0)),
                resource_id TEXT,
                list_price_minor BIGINT NOT NULL CHECK (list_price_minor > 0),
                discount_minor BIGINT NOT NULL CHECK (discount_minor >= 0),
                due_minor BIGINT NOT NULL CHECK (due_minor > 0),
                coupons_allowed BOOLEAN NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('unpaid','paid','delivered','delivery_failed','cancelled','expired','refunded')),
                expires_at BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                payment_id TEXT,
                coupon_minor BIGINT NOT NULL CHECK (coupon_minor >= 0),
                frozen_minor BIGINT NOT NULL CHECK (frozen_minor >= 0),
                freeze_id TEXT,
                cash_minor BIGINT NOT NULL CHECK (cash_minor >= 0),
                gift_minor BIGINT NOT NULL CHECK (gift_minor >= 0),
                paid_at BIGINT,
                resolved_at BIGINT,
                reference TEXT CHECK (reference IS NULL OR length(reference) BETWEEN 1 AND 100),
                term_from BIGINT,
                term_to BIGINT,
                PRIMARY KEY (account_id, id),
                CHECK (due_minor = list_price_minor - discount_minor),
                CHECK ((payment_id IS NULL) = (state IN ('unpaid','cancelled','expired','refunded'))),
                CHECK (payment_id IS NULL OR coupon_minor + frozen_minor = due_minor),
                CHECK ((freeze_id IS NOT NULL) = (frozen_minor > 0)),
                CHECK (state <> 'delivered' OR cash_minor + gift_minor = frozen_minor),
                CHECK ((type = 'refund') = (state = 'refunded')),
                CHECK (state <> 'refunded' OR (cash_minor + gift_minor + coupon_minor = due_minor AND resource_id IS NOT NULL))
            )
            """,
            """
            INSERT INTO orders_v17 (account_id, id, type, product_id, product_version, specification, duration_months, resource_id,
                                    list_price_minor, discount_minor, due_minor, coupons_allowed, state, expires_at, created_at, payment_id,
                                    coupon_minor, frozen_minor, freeze_id, cash_minor, gift_minor, paid_at, resolved_at, reference, term_from, term_to)
            SELECT account_id, id, type, product_id, product_version, specification, duration_months, resource_id, list_price_minor,
                   discount_minor, due_minor, coupons_allowed, state, expires_at, created_at, payment_id, coupon_minor, frozen_minor, freeze_id,
                   cash_minor, gift_minor, paid_at, resolved_at, reference, term_from, term_to FROM orders
            """,
            "DROP TABLE orders",
            "ALTER TABLE orders_v17 RENAME TO orders",
            "CREATE INDEX orders_by_created ON orders(account_id, created_at, id)",
            "CREATE INDEX orders_unpaid_by_expiry ON orders(expires_at) WHERE state = 'unpaid'",
            "CREATE INDEX orders_by_resource ON orders(account_id, resource_id)",
        ]),
        // 18: the audit log as a hash chain (Z4) with each record's origin (Z3): `seq` and `hash` are given at commit under
        // the chain's head row, which also keeps the last seq and hash so that a cut tail is seen. Records written before
        // this are chained in their time order by the data step.
        .steps(before: [
            "ALTER TABLE audit_log ADD COLUMN seq BIGINT",
            "ALTER TABLE audit_log ADD COLUMN hash TEXT CHECK (hash IS NULL OR length(hash) = 64)",
            "ALTER TABLE audit_log ADD COLUMN ip TEXT",
            "ALTER TABLE audit_log ADD COLUMN user_agent TEXT",
            "ALTER TABLE audit_log ADD COLUMN request_id TEXT",
            """
            CREATE TABLE audit_chain (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                seq BIGINT NOT NULL CHECK (seq >= 0),
                hash TEXT NOT NULL CHECK (length(hash) = 64)
            )
            """,
        ], data: AuditStorage.chainExisting, after: [
            "CREATE UNIQUE INDEX audit_log_by_seq ON audit_log(seq)",
            "CREATE INDEX audit_log_by_time ON audit_log(created_at)",
        ], name: "AuditStorage.chainExisting"),
        // 19: failed sign-ins in the database rather than in one process's memory, so that the throttle holds across the
        // instances behind a load balancer. Keys are digests (an e-mail address or a client address, hashed).
        .sql([
            """
            CREATE TABLE sign_in_failures (
                key_digest TEXT NOT NULL CHECK (length(key_digest) = 64),
                at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX sign_in_failures_by_key ON sign_in_failures(key_digest, at)",
        ]),
        // 20: scheduled jobs as leased rows, so that several instances on one database share them: an instance runs a job
        // only while it holds the job's lease (claimed with FOR UPDATE SKIP LOCKED on PostgreSQL), renews it while it
        // runs, and a lease left by a killed instance runs out. `runs` numbers every run; `job_runs` keeps the last
        // thousand of each job (who, when, what it did) for operators and for the multi-instance test.
        .sql([
            """
            CREATE TABLE job_leases (
                job TEXT PRIMARY KEY,
                holder TEXT,
                lease_until BIGINT NOT NULL DEFAULT 0,
                next_run_at BIGINT NOT NULL DEFAULT 0,
                runs BIGINT NOT NULL DEFAULT 0 CHECK (runs >= 0),
                CHECK ((holder IS NULL) = (lease_until = 0))
            )
            """,
            """
            CREATE TABLE job_runs (
                job TEXT NOT NULL REFERENCES job_leases(job),
                run BIGINT NOT NULL CHECK (run > 0),
                holder TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                finished_at BIGINT CHECK (finished_at IS NULL OR finished_at >= started_at),
                items BIGINT CHECK (items IS NULL OR items >= 0),
                error TEXT,
                PRIMARY KEY (job, run)
            )
            """,
        ]),
        // 21: the language of an account's notices, so that e-mail goes out in it (the console follows each reader).
        .sql([
            "ALTER TABLE accounts ADD COLUMN language TEXT NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en'))",
        ]),
        // 22: what an audited action changed, before and after (Z3), as JSON objects; in the record's hash when present.
        .sql([
            "ALTER TABLE audit_log ADD COLUMN before_state TEXT",
            "ALTER TABLE audit_log ADD COLUMN after_state TEXT",
        ]),
    ]
}

/// One numbered step of the schema. Append-only: an applied migration's text never changes (a test pins each one's
/// digest), a change is a new migration.
enum Migration: Sendable {
    case sql([String])
    /// Statements, then a data step written in Swift (rows reshaped in a way one SQL text for both databases cannot
    /// say), then more statements; all in the migration's one transaction.
    case steps(before: [String], data: @Sendable (any SQLDatabase, DriverConnection) async throws -> Void, after: [String],
               name: String = "LedgerRowsMigration")

    /// What the pinned digest covers: every statement, and the data step's name.
    var text: String {
        switch self {
        case .sql(let statements): statements.joined(separator: ";\n")
        case .steps(let before, _, let after, let name): (before + ["-- data step: \(name)"] + after).joined(separator: ";\n")
        }
    }
}
