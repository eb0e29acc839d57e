"""SQLModel tables. Timestamps are stored as UTC and come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

from models.crypto import decrypt_id, decrypt_json, encrypt_id, encrypt_json, id_lookup


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def bind_at(conn, value: datetime):
    """A timestamp as the driver takes it for a UTCDateTime column, for statements sent as
    text (SQLite: the naive UTC string SQLAlchemy stores, microseconds always, so stored
    strings compare in time order; PostgreSQL: the datetime itself)."""
    process = _at_processors.get(conn.dialect.name, False)
    if process is False:
        process = _at_processors[conn.dialect.name] = (
            UTCDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect))
    return process(value) if process else value


_at_processors: dict[str, object] = {}


class EncryptedIdNumber(TypeDecorator):
    """An ID number in Python, its AES-GCM ciphertext in the database (models/crypto.py).

    Randomized ciphertext cannot be compared, so comparisons are refused: look citizens up by
    `Citizen.id_hash == id_lookup(number)`.
    """

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(LargeBinary.Comparator):
        def operate(self, op, *other, **kwargs):
            raise TypeError("an encrypted ID number cannot be compared in SQL: filter on "
                            "Citizen.id_hash == id_lookup(number)")

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt_id(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt_id(value)


class EncryptedJSON(TypeDecorator):
    """A JSON value in Python, one AES-GCM blob in the database (models/crypto.encrypt_json):
    an official's batch request, whose rows carry ID numbers. Not comparable in SQL."""

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(LargeBinary.Comparator):
        def operate(self, op, *other, **kwargs):
            raise TypeError("an encrypted JSON column cannot be compared in SQL")

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt_json(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt_json(value)


def _id_hash_default(context) -> str:
    """citizen.id_hash from the row's ID number, for every INSERT (ORM or Core, one row or
    many): nobody can insert a citizen whose number cannot be found."""
    return id_lookup(context.get_current_parameters()["id_number"])


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Citizen(SQLModel, table=True):
    """`id_number` reads and writes the plain number; the column holds its ciphertext
    (`id_number_enc`; the Column's key stays `id_number`, so Core inserts name it so too).
    `id_hash` (HMAC, unique) is what look-ups compare."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    id_number: str = Field(sa_column=Column(
        "id_number_enc", EncryptedIdNumber(), key="id_number", nullable=False))
    id_hash: str | None = Field(default=None, sa_column=Column(
        String(64), nullable=False, unique=True, index=True, default=_id_hash_default))
    phone: str = Field(default="", max_length=32, index=True)
    status: str = Field(default="green", max_length=16)
    popup_kind: str | None = Field(default=None, max_length=16)
    reason: str = Field(default="", max_length=500)
    status_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    photo_path: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Visitor(SQLModel, table=True):
    """Someone a registrar checked in by name and ID number (a proxy check-in) who is not a
    registered citizen under that name: never a citizen record, so nobody can claim an ID
    number through a registrar. One row per (ID number, name given); the number is stored
    like a citizen's (ciphertext + keyed hash, docs/id-numbers.md). `citizen_id` is set when
    a citizen registers with this number and this name: their visits then become theirs."""

    __table_args__ = (UniqueConstraint("id_hash", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    id_number: str = Field(sa_column=Column(
        "id_number_enc", EncryptedIdNumber(), key="id_number", nullable=False))
    id_hash: str | None = Field(default=None, sa_column=Column(
        String(64), nullable=False, index=True, default=_id_hash_default))
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


@event.listens_for(Citizen, "before_update")
def _rehash_changed_id_number(mapper, connection, target: Citizen) -> None:
    if inspect(target).attrs.id_number.history.has_changes():
        target.id_hash = id_lookup(target.id_number)


class Venue(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    district: str = Field(max_length=64, index=True)
    category: str = Field(max_length=64)
    capacity: int | None = None
    # A stay nobody ends closes this long after arrival (models/stays.py: default by category).
    max_stay_minutes: int = Field(default=240)
    owner_id: int = Field(foreign_key="citizen.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Registrar(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("venue_id", "citizen_id"),)
    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id")
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    role: str = Field(default="co", max_length=8)  # owner | co
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class RegistrarInvitation(SQLModel, table=True):
    """A venue owner's invitation to a citizen to become a co-registrar; the invitee accepts
    (if green) or declines. `invitee_id` is deliberately not a foreign key: an invitation to
    an id nobody has is stored like any other (and never answered), so the inviter cannot
    tell a nonexistent citizen from one who has not decided (models/registrars.py)."""

    __table_args__ = (Index("ix_registrarinvitation_invitee_state", "invitee_id", "state"),)
    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    inviter_id: int = Field(foreign_key="citizen.id")
    invitee_id: int
    # pending|accepted|declined|withdrawn|expired (stored when a new invitation replaces an
    # expired one; a pending one past expires_at reads as expired)
    state: str = Field(default="pending", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())  # accepted only before this instant
    decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Logbook(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    label: str = Field(max_length=100)
    code: str = Field(max_length=64, unique=True)
    state: str = Field(default="active", max_length=16)  # active|suspended|revoked|deleted
    reason: str | None = Field(default=None, max_length=500)
    created_by: int = Field(foreign_key="citizen.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    state_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Checkin(SQLModel, table=True):
    """One stay: the arrival (`at`) and, once it ended, the departure (`left_at`). Masked name
    and ID are stored with it: they are what registrars see."""

    __table_args__ = (
        Index("ix_checkin_venue_id_id", "venue_id", "id"),
        # Open stays (occupancy, the expiry job): only rows still without a departure.
        Index("ix_checkin_open", "venue_id", "at", sqlite_where=sql_text("left_at IS NULL"),
              postgresql_where=sql_text("left_at IS NULL")),
        # A check-in batch's citizens' open stays, which their new arrivals end.
        Index("ix_checkin_citizen_open", "citizen_id", "at",
              sqlite_where=sql_text("left_at IS NULL"),
              postgresql_where=sql_text("left_at IS NULL")),
        Index("ix_checkin_logbook_id_id", "logbook_id", "id"),
        Index("ix_checkin_citizen_logbook_at", "citizen_id", "logbook_id", "at"),
        Index("ix_checkin_venue_id_at", "venue_id", "at"),  # exposures: a venue's time window
        # An unregistered visitor's visits (few): a partial index costs scans nothing.
        Index("ix_checkin_visitor_id", "visitor_id",
              postgresql_where=text("visitor_id IS NOT NULL"),
              sqlite_where=text("visitor_id IS NOT NULL")),
        CheckConstraint("citizen_id IS NOT NULL OR visitor_id IS NOT NULL",
                        name="ck_checkin_someone"),
    )
    # BIGINT on PostgreSQL (billions of scans); SQLite needs INTEGER for its rowid alias.
    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    venue_id: int = Field(foreign_key="venue.id")
    logbook_id: int = Field(foreign_key="logbook.id")
    # NULL for an unregistered visitor's visit (visitor_id set) until they register.
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id")
    visitor_id: int | None = Field(default=None, foreign_key="visitor.id")
    helper_id: int | None = Field(default=None, foreign_key="citizen.id")
    via: str = Field(default="scan", max_length=16)  # scan | proxy | registrar_scan
    status: str = Field(max_length=16)
    popup_kind: str | None = Field(default=None, max_length=16)
    alert: bool = False
    minor: bool = False
    name_masked: str = Field(max_length=64)
    id_masked: str = Field(max_length=18)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    left_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Dependant(SQLModel, table=True):
    """A household link: `citizen_id` checks `dependant_id` (a registered citizen) in with
    them (models/households.py)."""

    __table_args__ = (UniqueConstraint("citizen_id", "dependant_id"),)
    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    dependant_id: int = Field(foreign_key="citizen.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class PushSubscription(SQLModel, table=True):
    """A browser's Web Push subscription for a citizen (models/push.py): the push service's
    endpoint and the browser's keys. An endpoint is one browser profile: subscribing it again
    (another citizen signed in there) moves it to that citizen."""

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    endpoint: str = Field(max_length=2048, unique=True)
    p256dh: str = Field(max_length=100)
    auth: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Notice(SQLModel, table=True):
    """A citizen's notice feed (/ws/me): status changes (citizen_id set) and announcements
    (citizen_id NULL: everyone)."""

    __table_args__ = (Index("ix_notice_citizen_id_id", "citizen_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int | None = Field(default=None, foreign_key="citizen.id")
    kind: str = Field(max_length=16)  # status | notice
    status: str | None = Field(default=None, max_length=16)
    popup_kind: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    # The official request that caused it: a re-run of the batch re-publishes these.
    batch_id: int | None = Field(default=None, foreign_key="batch.id", index=True)


class StatusChange(SQLModel, table=True):
    """History of status changes; (batch_id, citizen_id) unique makes a re-run a no-op."""

    __table_args__ = (UniqueConstraint("batch_id", "citizen_id"),)
    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    old_status: str = Field(max_length=16)
    new_status: str = Field(max_length=16)
    popup_kind: str | None = Field(default=None, max_length=16)
    reason: str = Field(default="", max_length=500)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Batch(SQLModel, table=True):
    """An official's request carried out by a job: its input rows and its result.

    `payload` reads and writes the request as a dict; the column (`payload_enc`) holds it
    encrypted (ID numbers of status-change rows). `result` stays JSON: per-row errors carry
    the row index and the masked number only (models/health.row_error)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # status_changes | exposure | violation | lift
    actor: str = Field(default="official", max_length=64)
    # The district it acts in (an exposure's venue, a district official's request); None:
    # city level. District officials see their district's batches only.
    district: str | None = Field(default=None, max_length=64, index=True)
    payload: dict = Field(default_factory=dict, sa_column=Column(
        "payload_enc", EncryptedJSON(), key="payload", nullable=False))
    result: dict | None = Field(default=None, sa_column=Column(JSON))
    job_id: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ItineraryCheck(SQLModel, table=True):
    """A travel popup's itinerary verification: started by the citizen (pending, no
    reference), finished only by the itinerary platform's signed callback. `reference` (the
    platform's, unique) is stored for every callback accepted, so a replay is refused."""

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    state: str = Field(default="pending", max_length=16)  # pending | passed | failed
    reference: str | None = Field(default=None, max_length=200, unique=True)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    platform_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Official(SQLModel, table=True):
    """A health-authority official: a named account with a role and, below the city level, a
    district. Secrets are stored only as hashes (token: sha256; password: argon2id); the TOTP
    secret is sealed with the data keys (models/crypto.encrypt_json)."""

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)  # admin | operator | tracer | viewer
    district: str | None = Field(default=None, max_length=64)
    active: bool = True
    bootstrap: bool = False  # the SCANBOOK_ADMIN_TOKEN admin
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    password_hash: str | None = Field(default=None, max_length=255)
    totp_secret: dict | None = Field(default=None, sa_column=Column(
        "totp_secret_enc", EncryptedJSON(), key="totp_secret", nullable=True))
    created_by: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    disabled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class Audit(SQLModel, table=True):
    """Append-only: who did what to whom, when, and why. `actor` is the kind and id
    ("official:3", "citizen:5"; "official" alone on rows from before named accounts, when
    everyone shared one token); `actor_id`/`actor_name` name the authenticated official."""

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=64)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=32)
    target: str = Field(default="", max_length=64)
    citizen_id: int | None = Field(default=None, index=True)
    purpose: str = Field(default="", max_length=500)
    detail: dict | None = Field(default=None, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))


class Violation(SQLModel, table=True):
    """A registrar's violation: their logbooks stay suspended until an official lifts it."""

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    reason: str = Field(max_length=500)
    actor: str = Field(default="official", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    lifted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    lifted_by: str | None = Field(default=None, max_length=64)
    lift_reason: str | None = Field(default=None, max_length=500)


class Message(SQLModel, table=True):
    """留言: a citizen's message to the health authority, the start of a conversation
    (MessageReply); handled once an official says so (a reply does, by default)."""

    id: int | None = Field(default=None, primary_key=True)
    citizen_id: int = Field(foreign_key="citizen.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    handled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    handled_by: str | None = Field(default=None, max_length=64)


class MessageReply(SQLModel, table=True):
    """One turn after a 留言: an official's reply or the citizen's follow-up."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    from_official: bool
    actor: str = Field(max_length=64)  # the official ("official:<name>") or "citizen:<id>"
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
