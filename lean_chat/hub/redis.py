"""The stream hub across instances, on Redis (redis-py's asyncio client; the `redis` extra).

Keys, under a prefix (default `lean_chat:`), for stream S of user U in conversation C:

- `s:S` (hash): owner, conversation, title, resume flag, ended flag, the starting request's id (`rid`, when the
  client sent one), the reply's id (`mid`, when the request named one); expires `ttl` after the end.
- `s:S:f` (stream): the kept batches, entry id `0-<last frame id>`, fields `a` (first frame id), `f` (the
  frames' bytes) and `end` on the final frame; at most `max_batches` entries (XADD MAXLEN ~), expiring. An
  instance writes the batches of all its streams in one script call per round (no command per batch).
- `s:S:stop` (string): the stop flag, read at every lease renewal (it outlives a missed stop message).
- `s:S:r` (string): set while a reader on some instance follows the stream (for the producer's grace).
- `s:S:rescue` (string): the lock of the one instance that ends a stream whose producer died.
- `running` (sorted set): every running stream, scored by the end of its producer's lease.
- `u:U:n` (set): the user's streams; those whose lease in `running` lapsed are dropped when counting (the limit).
- `u:U:a` (hash): C -> S, the conversation's running stream.
- channel `stop`: a stream id to stop, heard by every instance.

Each instance renews the leases of its own streams every third of the lease (one ZADD for all of them, one MGET
of their stop flags; the keys' expiry every tenth round: a few bytes per stream, not a command), and ends the
streams of dead producers (their lease lapsed): the reply rebuilt from the kept frames is saved as partial and
the stream ends with an `error` of code `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..frames import error_frame, with_id
from ..log_escape import log_failure
from .base import (
    GAP_FRAME,
    HUB_UNAVAILABLE_FRAME,
    HubUnavailable,
    KeptFrames,
    OrphanSaver,
    Running,
    StreamInfo,
    TooManyStreams,
    frames_after,
)

__all__ = ["INTERRUPTED_CODE", "RedisHub", "rebuild_reply"]

logger = logging.getLogger("lean_chat")

INTERRUPTED_CODE = "interrupted"
INTERRUPTED_MESSAGE = "The server producing this reply stopped before it was complete."

_CLAIM = """
local alive = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local lease_end = redis.call('ZSCORE', KEYS[1], member)
  if lease_end and tonumber(lease_end) > tonumber(ARGV[2]) then alive = alive + 1
  else redis.call('SREM', KEYS[2], member) end
end
local limit = tonumber(ARGV[4])
if limit > 0 and alive >= limit then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[3], 'user', ARGV[5], 'conv', ARGV[6], 'title', ARGV[7], 'resume', ARGV[8], 'ended', '0')
redis.call('PEXPIRE', KEYS[3], ARGV[9])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[1])
redis.call('PEXPIRE', KEYS[4], ARGV[9])
return 1
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[4], ARGV[2]) end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'ended', '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
else
  redis.call('DEL', KEYS[3], KEYS[5])
end
return 1
"""

# One command per writing round for every stream's batches: XADD each (bounded; a failing one, such as an id
# already written by an instance that took this producer for dead, fails alone), and the key's expiry.
_APPEND = """
local maxlen, live = ARGV[1], ARGV[2]
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 4
  if ARGV[at + 3] == '1' then
    redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, ARGV[at], 'a', ARGV[at + 1], 'f', ARGV[at + 2], 'end', '1')
  else
    redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, ARGV[at], 'a', ARGV[at + 1], 'f', ARGV[at + 2])
  end
  redis.call('PEXPIRE', key, live)
end
return #KEYS
"""

_ROUND_SECONDS = 0.005

# A reader's reads that fail (a connection killed, Redis restarting) are tried again from where it is, this many
# times in a row, 0.1 s after the first failure and twice as long after each next one, 1 s at most (about 2.5 s in
# all); then it ends with a `hub_unavailable` error.
_READ_TRIES = 5

_TOKEN_EVENT = b"event: token\n"
_DATA = b"\ndata: "


class _TokenData(msgspec.Struct):
    """The data of a `token` frame (only the token is read)."""

    token: str


_decode_token = msgspec.json.Decoder(_TokenData).decode


def rebuild_reply(frames: list[bytes]) -> str:
    """The reply text carried by the `token` frames of these batches."""
    parts: list[str] = []
    for data in frames:
        for frame in data.split(b"\n\n"):
            if frame.startswith(_TOKEN_EVENT):
                start = frame.index(_DATA) + len(_DATA)
                end = frame.find(b"\n", start)
                parts.append(_decode_token(frame[start : end if end >= 0 else len(frame)]).token)
    return "".join(parts)


def _sha(loaded: str | bytes) -> bytes:
    """A script's SHA as SCRIPT LOAD answered it, as bytes."""
    return loaded.encode() if isinstance(loaded, str) else loaded


def _resp(parts: list[bytes]) -> bytes:
    """A command in the Redis protocol (RESP): an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out += (b"$%d\r\n" % len(part), part, b"\r\n")
    return b"".join(out)


def _now_ms() -> int:
    """Wall-clock milliseconds (leases are compared across instances: their clocks must agree)."""
    return int(time.time() * 1000)


@dataclass
class _Local:
    """A stream producing in this instance."""

    info: StreamInfo
    kept: KeptFrames | None
    running: Running | None = None


@dataclass
class _Place:
    """Where a reader from Redis is: the id of the last frame handed out."""

    after: int

    @property
    def cursor(self) -> str:
        """The stream entry id to read after."""
        return f"0-{self.after}"


@dataclass
class _Write:
    """One batch waiting to be written."""

    stream_id: str
    kept: KeptFrames
    first_id: int
    last_id: int
    data: bytes
    end: bool = False
    written: asyncio.Future[None] | None = field(default=None)


class RedisHub:
    """Streams shared by every instance that uses the same Redis and prefix."""

    releases_at_once = False  # `release` talks to Redis

    def __init__(
        self,
        url: str,
        prefix: str = "lean_chat:",
        ttl_seconds: float = 600.0,
        lease_seconds: float = 3.0,
        max_batches: int = 10_000,
        max_connections: int = 100,
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ImportError(
                "redis_url needs the redis client: install the `redis` extra (pip install 'lean-chat[redis]')"
            ) from None
        # A pool that waits for a free connection (the default one fails at once past its size).
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5)
        self.redis: Any = aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes both
        self._errors: tuple[type[BaseException], ...] = (aioredis.RedisError, OSError)
        self.prefix = prefix
        self.ttl_ms = int(ttl_seconds * 1000)
        self.lease_ms = max(300, int(lease_seconds * 1000))
        self.max_batches = max(1, max_batches)
        self.local: dict[str, _Local] = {}
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_orphan: OrphanSaver | None = None
        self._rounds = 0
        self._claim = self.redis.register_script(_CLAIM)
        self._release = self.redis.register_script(_RELEASE)
        self._append_sha = b""
        self._response_error: type[Exception] = aioredis.ResponseError

    # Keys.

    def _meta(self, stream_id: str) -> str:
        return f"{self.prefix}s:{stream_id}"

    def _frames(self, stream_id: str) -> str:
        return f"{self.prefix}s:{stream_id}:f"

    def _stop_flag(self, stream_id: str) -> str:
        return f"{self.prefix}s:{stream_id}:stop"

    def _readers(self, stream_id: str) -> str:
        return f"{self.prefix}s:{stream_id}:r"

    def _rescue_lock(self, stream_id: str) -> str:
        return f"{self.prefix}s:{stream_id}:rescue"

    def _user_streams(self, user_id: str) -> bytes:
        return f"{self.prefix}u:".encode() + user_id.encode("utf-8", "surrogatepass") + b":n"

    def _user_active(self, user_id: str) -> bytes:
        return f"{self.prefix}u:".encode() + user_id.encode("utf-8", "surrogatepass") + b":a"

    @contextlib.asynccontextmanager
    async def _answering(self) -> AsyncIterator[None]:
        """Redis failures while answering a request become a 503 (HubUnavailable), never a 500."""
        try:
            yield
        except self._errors as exc:
            logger.warning("stream hub: Redis failed (%s)", type(exc).__name__)
            raise HubUnavailable() from None

    @property
    def _running_set(self) -> str:
        return f"{self.prefix}running"

    @property
    def _channel(self) -> str:
        return f"{self.prefix}stop"

    @property
    def _live_ms(self) -> int:
        """How long the keys of a running stream live without renewal."""
        return max(self.ttl_ms, 60_000)

    # Life.

    async def open(self, on_orphan: OrphanSaver) -> None:
        """Check the connection, then start the writer, the stop listener and the lease keeper."""
        try:
            await self.redis.ping()
        except Exception as exc:
            raise RuntimeError(f"Redis is unreachable ({type(exc).__name__})") from None
        self._append_sha = _sha(await self.redis.script_load(_APPEND))
        self._on_orphan = on_orphan
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop()),
            loop.create_task(self._listen_loop()),
            loop.create_task(self._lease_loop()),
        ]

    async def close(self) -> None:
        """Stop the background tasks and close the connections."""
        pending = set(self._tasks)
        while pending:
            # Cancelled again until they end: redis-py swallows a cancel that lands while a pubsub connects.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.redis.aclose()

    # Producing.

    async def claim(self, info: StreamInfo, per_user: int) -> None:
        """Take one of the user's slots across instances, and register the stream and its lease."""
        keys: list[bytes | str] = [self._running_set, self._user_streams(info.user_id), self._meta(info.stream_id)]
        keys.append(self._user_active(info.user_id))
        args: list[Any] = [info.stream_id, _now_ms(), self.lease_ms, per_user, info.user_id]
        args += [info.conversation_id, info.title, int(info.resume), self._live_ms]
        async with self._answering():
            claimed = await self._claim(keys=keys, args=args)
        if not claimed:
            raise TooManyStreams(per_user)
        self.local[info.stream_id] = _Local(info, KeptFrames(self.max_batches) if info.resume else None)

    async def bind(self, info: StreamInfo, running: Running) -> None:
        """Name the stream's producer in this instance; note the title and life (for saving it if we die)."""
        local = self.local.get(info.stream_id)
        if local is not None:
            local.info = info
            local.running = running
            if info.resume:
                noted: dict[str, str | int] = {"title": info.title, "life": info.life}
                if info.request_id is not None:
                    noted["rid"] = info.request_id  # for the `interrupted` frame, should another instance end it
                if info.reply_id is not None:
                    noted["mid"] = info.reply_id  # the reply's id: a resume on another instance names it
                async with self._answering():
                    await self.redis.hset(self._meta(info.stream_id), mapping=noted)

    def keep(self, stream_id: str, first_id: int, last_id: int, data: bytes) -> None:
        """Queue the batch for Redis; readers here see it once it is written (what a user saw survives us)."""
        local = self.local.get(stream_id)
        if local is None or local.kept is None:
            return
        self._pending.append(_Write(stream_id, local.kept, first_id, last_id, data))
        self._wake.set()

    async def end(self, stream_id: str, last_id: int, frame: bytes) -> None:
        """Queue the final frame; return once it (and every batch before it) is in Redis."""
        local = self.local.get(stream_id)
        if local is None or local.kept is None:
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(stream_id, local.kept, last_id, last_id, frame, True, written))
        self._wake.set()
        await written

    async def release(self, info: StreamInfo) -> None:
        """Free the slot, the lease and the active mark; the kept frames expire after the TTL."""
        self.local.pop(info.stream_id, None)
        try:
            await self._release_keys(info.stream_id, info.user_id, info.conversation_id, info.resume)
        except Exception as exc:
            logger.warning("stream hub: releasing a stream failed (%s)", type(exc).__name__)

    async def _release_keys(self, stream_id: str, user_id: str, conversation_id: str, resume: bool) -> None:
        """Run the release script."""
        keys: list[bytes | str] = [self._running_set, self._user_streams(user_id), self._meta(stream_id)]
        keys += [self._user_active(user_id), self._frames(stream_id)]
        await self._release(keys=keys, args=[stream_id, conversation_id, self.ttl_ms, int(resume)])

    async def _write_loop(self) -> None:
        """Write the queued batches of every stream, one script call per round."""
        while True:
            await self._wake.wait()
            # A round gathers what every stream produced in a few milliseconds: one call for all of it (the
            # client's cost is per call, not per byte), at a few milliseconds of added latency.
            await asyncio.sleep(_ROUND_SECONDS)
            self._wake.clear()
            writes, self._pending = self._pending, []
            if not writes:
                continue
            try:
                await self._append_all(writes)
            except Exception as exc:
                logger.warning("stream hub: writing kept frames failed (%s)", type(exc).__name__)
            for write in writes:  # now readers here may see them (without Redis, they still do)
                write.kept.add(write.first_id, write.last_id, write.data, write.end)
                if write.written is not None and not write.written.done():
                    write.written.set_result(None)

    async def _append_all(self, writes: list[_Write]) -> None:
        """One EVALSHA of the append script for these batches, packed here (redis-py packs each argument by a
        generic path that cost more than everything else a resumable stream does per batch)."""
        keys = [self._frames(write.stream_id).encode() for write in writes]
        parts = [b"EVALSHA", self._append_sha, b"%d" % len(keys), *keys, b"%d" % self.max_batches]
        parts.append(b"%d" % self._live_ms)
        for write in writes:
            parts += (b"0-%d" % write.last_id, b"%d" % write.first_id, write.data, b"1" if write.end else b"0")
        pool = self.redis.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(_resp(parts), check_health=False)
            try:
                await connection.read_response()
            except self._response_error as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
                self._append_sha = _sha(await self.redis.script_load(_APPEND))  # Redis restarted: load it again
                parts[1] = self._append_sha
                await connection.send_packed_command(_resp(parts), check_health=False)
                await connection.read_response()
        finally:
            await pool.release(connection)

    # Leases, stop flags and dead producers.

    async def _lease_loop(self) -> None:
        """Every third of the lease: renew this instance's leases, read stop flags, end lapsed streams."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._renew()
                await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream hub: lease renewal failed (%s)", type(exc).__name__)

    async def _renew(self) -> None:
        """Renew every local lease at once; stop the streams whose stop flag is set; now and then, the expiries."""
        streams = list(self.local.values())
        if not streams:
            return
        self._rounds += 1
        lease_end = _now_ms() + self.lease_ms
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self._running_set, {s.info.stream_id: lease_end for s in streams}, xx=True)
        if self._rounds % 10 == 0:  # the keys live at least a minute: renewing them every few seconds is plenty
            for stream in streams:
                info = stream.info
                pipe.pexpire(self._user_streams(info.user_id), self._live_ms)
                pipe.pexpire(self._user_active(info.user_id), self._live_ms)
                pipe.pexpire(self._meta(info.stream_id), self._live_ms)
                if info.resume:
                    pipe.pexpire(self._frames(info.stream_id), self._live_ms)
        pipe.mget([self._stop_flag(s.info.stream_id) for s in streams])
        results = await pipe.execute()
        for stream, flag in zip(streams, results[-1], strict=True):
            if flag is not None and stream.running is not None:
                stream.running.stop_by_user()

    async def _sweep(self) -> None:
        """End the streams whose producer's lease lapsed (on whichever instance gets the lock first)."""
        lapsed = await self.redis.zrangebyscore(self._running_set, "-inf", _now_ms(), start=0, num=50)
        for raw in lapsed:
            stream_id = raw.decode()
            if stream_id not in self.local:
                await self._rescue(stream_id)

    async def _rescue(self, stream_id: str) -> None:
        """End a stream whose producer died: save the reply rebuilt from its frames, add `interrupted`."""
        if not await self.redis.set(self._rescue_lock(stream_id), b"1", nx=True, px=30_000):
            return
        meta = await self.redis.hgetall(self._meta(stream_id))
        if not meta:
            await self.redis.zrem(self._running_set, stream_id)
            return
        info = _info(stream_id, meta)
        if info.resume and meta.get(b"ended") != b"1":
            entries = await self.redis.xrange(self._frames(stream_id))
            if not entries or b"end" not in entries[-1][1]:
                last_id = _last_id(entries[-1][0]) if entries else 0
                content = rebuild_reply([fields[b"f"] for _, fields in entries])
                if content and self._on_orphan is not None:
                    try:
                        await self._on_orphan(info, content)
                    except Exception as exc:
                        log_failure(logger, "stream hub: saving an interrupted reply failed", exc, stream=stream_id)
                frame = with_id(error_frame(INTERRUPTED_MESSAGE, INTERRUPTED_CODE, info.request_id), last_id + 1)
                fields = {"a": last_id + 1, "f": frame, "end": 1}
                await self.redis.xadd(self._frames(stream_id), fields, id=f"0-{last_id + 1}")
                logger.warning("stream hub: stream %s lost its producer; ended as interrupted", stream_id)
        await self._release_keys(stream_id, info.user_id, info.conversation_id, info.resume)

    # Reading.

    def running(self, stream_id: str) -> Running | None:
        """The stream when it produces in this instance."""
        local = self.local.get(stream_id)
        return local.running if local is not None else None

    async def lookup(self, stream_id: str) -> tuple[StreamInfo, bool] | None:
        """The stream and whether it has ended (from Redis: it may run on another instance)."""
        local = self.local.get(stream_id)
        if local is not None:
            return local.info, False
        async with self._answering():
            meta = await self.redis.hgetall(self._meta(stream_id))
        return (_info(stream_id, meta), meta.get(b"ended") == b"1") if meta else None

    def follow(self, stream_id: str, after: int, idle: float) -> AsyncGenerator[bytes | None, None]:
        """The frames after `after`: from this instance's memory when it produces them, else from Redis."""
        local = self.local.get(stream_id)
        if local is not None and local.kept is not None:
            return local.kept.follow(after, idle)
        return self._follow_redis(stream_id, after, idle)

    async def _follow_redis(self, stream_id: str, after: int, idle: float) -> AsyncGenerator[bytes | None, None]:
        """The frames after `after`, read from Redis; a failing read is tried again from the reader's place (a few
        times), then the reader ends with a `hub_unavailable` error: never a silent end, which looks complete."""
        place = _Place(after)
        failures = 0
        while True:
            try:
                async for chunk in self._read_redis(stream_id, place, idle):
                    failures = 0
                    yield chunk
                return
            except self._errors as exc:
                failures += 1
                if failures > _READ_TRIES:
                    logger.warning(
                        "stream hub: reading a stream from Redis failed %d times (%s); the reader ends with %s",
                        failures,
                        type(exc).__name__,
                        "hub_unavailable",
                    )
                    yield HUB_UNAVAILABLE_FRAME
                    return
                logger.warning("stream hub: reading a stream from Redis failed (%s); trying again", type(exc).__name__)
                await asyncio.sleep(min(1.0, 0.1 * 2 ** (failures - 1)))

    async def _read_redis(self, stream_id: str, place: _Place, idle: float) -> AsyncGenerator[bytes | None, None]:
        """The frames after `place`, read from Redis (the stream runs on another instance, or has ended); `place`
        moves on with every batch handed out, so that a read that failed goes on from there."""
        key = self._frames(stream_id)
        block_ms = max(50, min(1000, int((idle if idle > 0 else 1.0) * 1000)))
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            await self.redis.set(self._readers(stream_id), b"1", px=self.lease_ms * 2)
            answer = await self.redis.xread({key: place.cursor}, count=1000, block=block_ms)
            if answer:
                for entry_id, fields in answer[0][1]:
                    first_id, after = int(fields[b"a"]), place.after
                    if first_id > after + 1:
                        yield GAP_FRAME
                        return
                    place.after = _last_id(entry_id)
                    yield frames_after(fields[b"f"], first_id, after)
                    if b"end" in fields:
                        return
                quiet_since = loop.time()
                continue
            if idle > 0 and loop.time() - quiet_since >= idle:
                quiet_since = loop.time()
                yield None
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(self._meta(stream_id), "ended")
            pipe.zscore(self._running_set, stream_id)
            ended, lease_end = await pipe.execute()
            if ended is None:
                return  # expired
            if ended == b"1":
                if not await self.redis.xread({key: place.cursor}, count=1):
                    return
            elif lease_end is None or lease_end < _now_ms():
                await self._rescue(stream_id)

    async def last_id(self, stream_id: str) -> int:
        """The newest kept frame's id."""
        local = self.local.get(stream_id)
        if local is not None and local.kept is not None:
            return local.kept.last_id
        async with self._answering():
            newest = await self.redis.xrevrange(self._frames(stream_id), count=1)
        return _last_id(newest[0][0]) if newest else 0

    async def readers_elsewhere(self, stream_id: str) -> bool:
        """True while a reader on another instance follows the stream."""
        return bool(await self.redis.exists(self._readers(stream_id)))

    async def stop(self, user_id: str, stream_id: str) -> bool:
        """Stop the user's running stream: at once when here, else by message plus flag to its instance."""
        local = self.local.get(stream_id)
        if local is not None:
            if local.info.user_id != user_id or local.running is None:
                return False
            local.running.stop_by_user()
            return True
        async with self._answering():
            owner, ended = await self.redis.hmget(self._meta(stream_id), ["user", "ended"])
            if owner is None or owner.decode("utf-8", "surrogatepass") != user_id or ended == b"1":
                return False
            if await self.redis.zscore(self._running_set, stream_id) is None:
                return False
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self._stop_flag(stream_id), b"1", px=self._live_ms)
            pipe.publish(self._channel, stream_id)
            await pipe.execute()
        return True

    async def _listen_loop(self) -> None:
        """Hear stop messages; stop the named stream when it runs here."""
        while True:
            try:
                pubsub = self.redis.pubsub()
                try:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            local = self.local.get(message["data"].decode())
                            if local is not None and local.running is not None:
                                local.running.stop_by_user()
                finally:
                    await pubsub.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream hub: stop listener failed (%s); listening again", type(exc).__name__)
                await asyncio.sleep(1)

    async def active(self, user_id: str, conversation_ids: list[str]) -> dict[str, str]:
        """The running stream of each conversation that has one."""
        if not conversation_ids:
            return {}
        async with self._answering():
            found = await self.redis.hmget(self._user_active(user_id), conversation_ids)
        return {cid: sid.decode() for cid, sid in zip(conversation_ids, found, strict=True) if sid is not None}


def _info(stream_id: str, meta: dict[bytes, bytes]) -> StreamInfo:
    """A stream's description from its meta hash."""

    def text(name: bytes) -> str:
        return meta.get(name, b"").decode("utf-8", "surrogatepass")

    life = int(meta.get(b"life", b"0"))
    request_id = meta[b"rid"].decode() if b"rid" in meta else None
    reply_id = text(b"mid") if b"mid" in meta else None
    resume = meta.get(b"resume") == b"1"
    return StreamInfo(stream_id, text(b"user"), text(b"conv"), text(b"title"), resume, life, request_id, reply_id)


def _last_id(entry_id: bytes) -> int:
    """The last frame id of a kept batch (the sequence part of its entry id `0-N`)."""
    return int(entry_id.rsplit(b"-", 1)[1])
