"""Officials: named accounts with a role and an optional district.

Roles form a ladder, each doing what the one below does and more: a `viewer` reads jobs, the
audit and the wallboard; an `operator` also changes statuses, runs exposures and violations
and sends notices; a `tracer` also reads the unmasked trace; an `admin` also manages
officials. An official with a district acts only on that district's venues and people; one
without (the city level) acts everywhere.

The `SCANBOOK_ADMIN_TOKEN` official is the bootstrap admin: a row like any other (so the audit
can name it), whose token is the configured one (`ensure_bootstrap` keeps its hash current).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from models.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.tables import Official, utcnow
from models.timeutil import iso


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    TRACER = "tracer"
    ADMIN = "admin"


LADDER = (Role.VIEWER, Role.OPERATOR, Role.TRACER, Role.ADMIN)


class Permission(StrEnum):
    """What an endpoint needs; each is granted from one rung of the ladder up."""

    READ = "read"  # jobs, batches, audit, wallboard, violations, notices, messages
    ACT = "act"  # status changes, exposures, violations and lifts, notices, citizens
    TRACE = "trace"  # the unmasked trace
    MANAGE = "manage"  # officials


LOWEST_ROLE = {Permission.READ: Role.VIEWER, Permission.ACT: Role.OPERATOR,
               Permission.TRACE: Role.TRACER, Permission.MANAGE: Role.ADMIN}

BOOTSTRAP_LOGIN = "admin"
BOOTSTRAP_NAME = "初始管理员 / bootstrap admin"
TOKEN_PREFIX = "sbo_"


def allows(role: str, permission: Permission) -> bool:
    """Whether `role` may do what `permission` guards."""
    try:
        return LADDER.index(Role(role)) >= LADDER.index(LOWEST_ROLE[permission])
    except ValueError:
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """An official's API token (the prefix tells it from a citizen's `sbc_` token)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def official_public(official: Official) -> dict:
    return {"id": official.id, "login": official.login, "name": official.name,
            "role": official.role, "district": official.district, "active": official.active,
            "bootstrap": official.bootstrap, "created_at": iso(official.created_at),
            "disabled_at": iso(official.disabled_at) if official.disabled_at else None,
            "password": official.password_hash is not None,
            "totp": official.totp_secret is not None}


def _text(value: object, what: str, *, required: bool = True, max_length: int = 64
          ) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ValidationFailed(f"{what} 不能为空 / {what} is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_length:
        raise ValidationFailed(f"{what} 须为{max_length}字以内的文字 / {what} must be text of "
                               f"at most {max_length} characters")
    return value.strip()


def clean_role(value: object) -> Role:
    try:
        return Role(value) if isinstance(value, str) else Role("")
    except ValueError:
        raise ValidationFailed("role 须为 admin、operator、tracer 或 viewer / role must be "
                               "admin, operator, tracer or viewer") from None


def _free_login(session: Session, wanted: str) -> str:
    login, n = wanted, 1
    while session.exec(select(Official.id).where(Official.login == login)).first():
        n += 1
        login = f"{wanted}{n}"
    return login


def create_official(session: Session, *, name: object, role: object, district: object = None,
                    login: object = None, created_by: int | None = None
                    ) -> tuple[Official, str]:
    """A new active official and their API token (shown once: only its hash is kept). The
    login defaults to the name (with a number added when it is taken)."""
    clean_name = _text(name, "name")
    clean_district = _text(district, "district", required=False)
    if login is None:
        chosen = _free_login(session, clean_name)
    else:
        chosen = _text(login, "login")
        if session.exec(select(Official.id).where(Official.login == chosen)).first():
            raise Conflict("该登录名已被使用 / this login is taken")
    token = new_token()
    official = Official(login=chosen, name=clean_name, role=clean_role(role),
                        district=clean_district, token_hash=hash_token(token),
                        created_by=created_by)
    session.add(official)
    session.commit()
    session.refresh(official)
    return official, token


def list_officials(session: Session) -> list[Official]:
    return list(session.exec(select(Official).order_by(col(Official.id))).all())


def get_official(session: Session, official_id: int) -> Official:
    official = session.get(Official, official_id)
    if official is None:
        raise NotFound("官员账户不存在 / official not found")
    return official


def disable_official(session: Session, *, official_id: int, by: int | None = None) -> Official:
    """Disable an account: its token stops working (the caller ends its sessions)."""
    official = get_official(session, official_id)
    if official.bootstrap:
        raise Conflict("初始管理员由 SCANBOOK_ADMIN_TOKEN 配置，请更换该令牌 / the bootstrap "
                       "admin is SCANBOOK_ADMIN_TOKEN: change that setting instead")
    if by is not None and by == official_id:
        raise Forbidden("不能停用自己的账户 / you cannot disable your own account")
    if official.active:
        official.active = False
        official.disabled_at = utcnow()
        official.token_hash = None
        session.add(official)
        session.commit()
        session.refresh(official)
    return official


def rotate_token(session: Session, *, official_id: int) -> tuple[Official, str]:
    """A new API token for an active official; the old one stops working."""
    official = get_official(session, official_id)
    if official.bootstrap:
        raise Conflict("初始管理员的令牌即 SCANBOOK_ADMIN_TOKEN / the bootstrap admin's token "
                       "is SCANBOOK_ADMIN_TOKEN: change that setting instead")
    if not official.active:
        raise Conflict("该账户已停用 / this account is disabled")
    token = new_token()
    official.token_hash = hash_token(token)
    session.add(official)
    session.commit()
    session.refresh(official)
    return official, token


def official_by_token(session: Session, token: str) -> Official | None:
    """The active official whose token this is."""
    return session.exec(select(Official).where(Official.token_hash == hash_token(token),
                                               col(Official.active))).first()


def official_by_login(session: Session, login: str) -> Official | None:
    return session.exec(select(Official).where(Official.login == login)).first()


def ensure_bootstrap(session: Session, admin_token: str) -> tuple[Official, bool]:
    """The bootstrap admin's row, created on first start; its token hash follows the
    configured token. True when the token changed (the caller ends the old token's
    sessions)."""
    wanted = hash_token(admin_token)
    official = session.exec(select(Official).where(col(Official.bootstrap))).first()
    if official is None:
        official = Official(login=_free_login(session, BOOTSTRAP_LOGIN), name=BOOTSTRAP_NAME,
                            role=Role.ADMIN, bootstrap=True, token_hash=wanted)
        session.add(official)
        session.commit()
        session.refresh(official)
        return official, False
    if official.token_hash == wanted:
        return official, False
    official.token_hash = wanted
    session.add(official)
    session.commit()
    session.refresh(official)
    return official, True


# --- password and authenticator (TOTP) -----------------------------------------------------

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY = _HASHER.hash("not a password: keeps failed look-ups as slow as real checks")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
ISSUER = "Scanbook"


def set_credentials(session: Session, *, official_id: int, password: object) -> str:
    """A new password and a new authenticator secret (pending until a code from it is
    confirmed); the otpauth:// URI the enrolment QR code shows, once."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed(f"密码须为{MIN_PASSWORD}–{MAX_PASSWORD}个字符 / the password must "
                               f"be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    official = get_official(session, official_id)
    if not official.active:
        raise Conflict("该账户已停用 / this account is disabled")
    secret = pyotp.random_base32()
    official.password_hash = _HASHER.hash(password)
    official.totp_secret = {"secret": secret, "confirmed": False, "last": None}
    session.add(official)
    session.commit()
    return pyotp.TOTP(secret).provisioning_uri(name=official.login, issuer_name=ISSUER)


def _code_ok(stored: dict, code: object) -> int | None:
    """The time step a 6-digit code is valid for (this one or a neighbour: clocks drift), if
    it was not used before; else None."""
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(stored["secret"])
    now = int(time.time())
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            step = totp.timecode(datetime.fromtimestamp(at, UTC))
            last = stored.get("last")
            return step if last is None or step > last else None
    return None


def confirm_totp(session: Session, *, official_id: int, code: object) -> bool:
    """Confirm the pending authenticator with a code from it."""
    official = get_official(session, official_id)
    stored = official.totp_secret
    if not stored:
        raise Conflict("请先设置密码 / set a password first")
    step = _code_ok(stored, code)
    if step is None:
        return False
    official.totp_secret = {**stored, "confirmed": True, "last": step}
    session.add(official)
    session.commit()
    return True


def check_sign_in(session: Session, *, login: object, password: object, code: object
                  ) -> Official | None:
    """The official these credentials sign in (active, password set, authenticator
    confirmed, the code not used before), or None."""
    official = official_by_login(session, login) if isinstance(login, str) else None
    ready = (official is not None and official.active and official.password_hash
             and (official.totp_secret or {}).get("confirmed"))
    try:
        _HASHER.verify(official.password_hash if ready else _DUMMY,
                       password if isinstance(password, str) else "")
    except (VerificationError, InvalidHashError):
        return None
    if not ready:
        return None
    step = _code_ok(official.totp_secret, code)
    if step is None:
        return None
    official.totp_secret = {**official.totp_secret, "last": step}
    session.add(official)
    session.commit()
    return official
