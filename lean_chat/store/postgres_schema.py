"""The PostgreSQL schema, its migrations by version, and the one-round-trip turn function."""

from __future__ import annotations

__all__ = ["LOCK_KEY", "MIGRATIONS", "VERSION_TABLE"]

# pg_advisory_xact_lock key: instances starting at once migrate one after the other.
LOCK_KEY = 0x6C63_7363_6865_6D61  # "lcschema"

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS lc_schema_version (version integer NOT NULL)"

_TABLES = """
CREATE SEQUENCE lc_lives;

CREATE TABLE lc_conversations (
    conversation_id text PRIMARY KEY,
    user_id text NOT NULL,
    life bigint NOT NULL,
    title text NOT NULL,
    title_explicit boolean NOT NULL DEFAULT false,
    has_user boolean NOT NULL DEFAULT false,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    message_count integer NOT NULL DEFAULT 0
);
CREATE INDEX lc_conversations_by_user ON lc_conversations (user_id, updated_at DESC);

CREATE TABLE lc_messages (
    conversation_id text NOT NULL REFERENCES lc_conversations ON DELETE CASCADE,
    pos integer NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    chars integer NOT NULL,
    meta text,
    PRIMARY KEY (conversation_id, pos)
);
CREATE INDEX lc_messages_system ON lc_messages (conversation_id, pos) WHERE role = 'system';
"""

# One turn's start in one statement: claim or check the conversation (row locked), merge the incoming messages,
# append the new ones, and return a header row (its `pos`: the stored count before the turn) then the stored
# messages the context needs:
#   kind 'forbidden'           another user's conversation: nothing written;
#   kind 'prefix'              the stored messages were a prefix of the incoming ones (the context is incoming):
#                              the stored rows whose meta may hold parts follow (the context takes those, whose
#                              provider state the client's copies lack; none for a conversation without parts);
#   kind 'delta'               the caller's cached window (p_known_life, p_known_count) is current: the rows
#                              stored since it follow;
#   kind 'window'              the rows of the stored messages' capped context follow (system ones kept).
_START_TURN = """
CREATE OR REPLACE FUNCTION lc_start_turn(
    p_user text, p_cid text, p_roles text[], p_contents text[], p_metas text[], p_title text,
    p_cap integer, p_now double precision, p_known_life bigint, p_known_count integer
) RETURNS TABLE (kind text, life bigint, title text, pos integer, role text, content text, meta text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    conv lc_conversations%ROWTYPE;
    n integer := coalesce(array_length(p_roles, 1), 0);
    old_count integer;
    first_new integer := 1;
    is_prefix boolean := false;
    parts_at integer[] := '{}';
    budget bigint;
    start_pos integer;
    taken integer := 0;
    rec record;
BEGIN
    -- The usual turn: the user's conversation, longer than the request (so not a prefix of it): one UPDATE
    -- locks the row, checks the owner and advances the count.
    IF n > 0 THEN
        UPDATE lc_conversations c SET
            message_count = c.message_count + n,
            updated_at = p_now,
            title = CASE WHEN c.title_explicit OR c.has_user THEN c.title ELSE p_title END,
            has_user = c.has_user OR 'user' = ANY (p_roles)
        WHERE c.conversation_id = p_cid AND c.user_id = p_user AND c.message_count > n
        RETURNING c.* INTO conv;
    END IF;
    IF n > 0 AND FOUND THEN
        old_count := conv.message_count - n;
        INSERT INTO lc_messages (conversation_id, pos, role, content, chars, meta)
        SELECT p_cid, old_count + i - 1, p_roles[i], p_contents[i], char_length(p_contents[i]), p_metas[i]
        FROM generate_series(1, n) AS i;
    ELSE
        LOOP  -- a second pass only when a delete removed the row between the two statements
            INSERT INTO lc_conversations AS c (conversation_id, user_id, life, title, created_at, updated_at)
            VALUES (p_cid, p_user, nextval('lc_lives'), 'New chat', p_now, p_now)
            ON CONFLICT (conversation_id) DO NOTHING
            RETURNING c.* INTO conv;
            EXIT WHEN FOUND;
            SELECT * INTO conv FROM lc_conversations c WHERE c.conversation_id = p_cid FOR UPDATE;
            EXIT WHEN FOUND;
        END LOOP;
        IF conv.user_id IS DISTINCT FROM p_user THEN
            kind := 'forbidden'; life := 0; title := ''; pos := 0; role := ''; content := ''; meta := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
        old_count := conv.message_count;
        IF old_count > 0 AND old_count <= n THEN
            is_prefix := true;
            FOR rec IN SELECT m.pos, m.role, m.content, strpos(m.meta, '"parts"') > 0 AS parts FROM lc_messages m
                       WHERE m.conversation_id = p_cid ORDER BY m.pos LOOP
                IF rec.role IS DISTINCT FROM p_roles[rec.pos + 1]
                   OR rec.content IS DISTINCT FROM p_contents[rec.pos + 1] THEN
                    is_prefix := false;
                    EXIT;
                END IF;
                IF rec.parts THEN
                    parts_at := parts_at || rec.pos;
                END IF;
            END LOOP;
        END IF;
        IF is_prefix THEN
            first_new := old_count + 1;
        END IF;
        IF n >= first_new THEN
            INSERT INTO lc_messages (conversation_id, pos, role, content, chars, meta)
            SELECT p_cid, old_count + i - first_new, p_roles[i], p_contents[i], char_length(p_contents[i]),
                   p_metas[i]
            FROM generate_series(first_new, n) AS i;
            UPDATE lc_conversations c SET
                message_count = old_count + n - first_new + 1,
                updated_at = p_now,
                title = CASE WHEN conv.title_explicit OR conv.has_user THEN c.title ELSE p_title END,
                has_user = conv.has_user OR 'user' = ANY (p_roles[first_new:n])
            WHERE c.conversation_id = p_cid
            RETURNING c.title INTO conv.title;
        END IF;
    END IF;
    IF is_prefix THEN
        kind := 'prefix'; life := conv.life; title := conv.title; pos := old_count; role := ''; content := '';
        RETURN NEXT;
        IF cardinality(parts_at) > 0 THEN
            RETURN QUERY SELECT 'row'::text, 0::bigint, ''::text, m.pos, m.role, m.content, m.meta
                FROM lc_messages m WHERE m.conversation_id = p_cid AND m.pos = ANY (parts_at) ORDER BY m.pos;
        END IF;
        RETURN;
    END IF;
    IF conv.life = p_known_life AND p_known_count <= old_count THEN
        kind := 'delta'; life := conv.life; title := conv.title; pos := old_count; role := ''; content := '';
        RETURN NEXT;
        IF p_known_count < old_count THEN  -- rows another turn (or instance) stored since the caller's window
            RETURN QUERY SELECT 'row'::text, 0::bigint, ''::text, m.pos, m.role, m.content, m.meta
                FROM lc_messages m
                WHERE m.conversation_id = p_cid AND m.pos >= p_known_count AND m.pos < old_count ORDER BY m.pos;
        END IF;
        RETURN;
    END IF;
    kind := 'window'; life := conv.life; title := conv.title; pos := old_count; role := ''; content := '';
    RETURN NEXT;
    IF old_count = 0 THEN
        RETURN;
    END IF;
    IF p_cap <= 0 THEN
        start_pos := 0;
    ELSE
        budget := p_cap - coalesce((SELECT sum(m.chars) FROM lc_messages m
                                    WHERE m.conversation_id = p_cid AND m.role = 'system' AND m.pos < old_count), 0);
        start_pos := old_count;
        FOR rec IN SELECT m.pos, m.role, m.chars FROM lc_messages m
                   WHERE m.conversation_id = p_cid AND m.pos < old_count ORDER BY m.pos DESC LOOP
            IF rec.role <> 'system' THEN
                EXIT WHEN rec.chars > budget AND taken > 0;
                budget := budget - rec.chars;
            END IF;
            taken := taken + 1;
            start_pos := rec.pos;
        END LOOP;
    END IF;
    RETURN QUERY SELECT 'row'::text, 0::bigint, ''::text, m.pos, m.role, m.content, m.meta FROM lc_messages m
        WHERE m.conversation_id = p_cid AND m.role = 'system' AND m.pos < start_pos ORDER BY m.pos;
    RETURN QUERY SELECT 'row'::text, 0::bigint, ''::text, m.pos, m.role, m.content, m.meta FROM lc_messages m
        WHERE m.conversation_id = p_cid AND m.pos >= start_pos AND m.pos < old_count ORDER BY m.pos;
END
$fn$;
"""

# Version n is reached by running MIGRATIONS[n - 1]; a new version appends a step, never edits one.
# Version 2 replaces lc_start_turn with its faster body (one UPDATE on the usual path, one INSERT ... RETURNING
# for a new conversation); CREATE OR REPLACE keeps later versions of the function equally cheap to ship.
# Version 3: a 'prefix' turn also returns the stored rows with parts (their provider state stays in the context).
MIGRATIONS: tuple[str, ...] = (_TABLES + _START_TURN, _START_TURN, _START_TURN)
