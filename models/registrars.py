"""Co-registrars: the venue's owner invites, the invitee decides, the owner removes, a
co-registrar leaves. Every step is audited.

Nothing the inviter sees depends on who the invited id names: a green citizen, an abnormal
one and an id nobody has all get the same pending invitation (the id is not even looked
up), so inviting cannot sweep statuses or probe ids. The invitee's status is checked when
they accept, and only they are told (403 registrar_not_green). Until someone accepts, the
venue's list shows the invitation by citizen number only, without a name.

An invitation can be accepted until its `expires_at` (made with it: `invitation_days` of the
settings, 7 by default), not at that instant or after (410 invitation_expired). A pending one
past it reads as `expired`; inviting the same person again replaces it with a new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from models.audit import record
from models.errors import Conflict, Forbidden, InvitationExpired, NotFound, ValidationFailed
from models.masking import mask_name
from models.tables import Citizen, Registrar, RegistrarInvitation, Venue, utcnow
from models.timeutil import iso
from models.venues import get_venue, require_green, require_registrar

INVITE = "registrar_invite"
ACCEPT = "registrar_accept"
DECLINE = "registrar_decline"
WITHDRAW = "registrar_withdraw"
REMOVE = "registrar_remove"
LEAVE = "registrar_leave"
ACTIONS = (INVITE, ACCEPT, DECLINE, WITHDRAW, REMOVE, LEAVE)
PENDING = "pending"
EXPIRED = "expired"
DEFAULT_INVITATION_DAYS = 7  # the setting's default (and what migration 0014 gave old rows)
MAX_ID = 2**31 - 1  # citizen ids are `integer` columns


def _audit(session: Session, action: str, *, actor: Citizen, venue_id: int, citizen_id: int,
           invitation_id: int | None = None) -> None:
    record(session, actor=f"citizen:{actor.id}", action=action, target=f"venue:{venue_id}",
           citizen_id=citizen_id, purpose="登记员管理 / co-registrar management",
           detail={"venue_id": venue_id, "invitation_id": invitation_id})


def _clean_citizen_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise ValidationFailed("citizen_id 须为正整数 / citizen_id must be a positive integer")
    return value


def _require_owner(session: Session, venue_id: int, actor: Citizen, what: str) -> Registrar:
    duty = require_registrar(session, venue_id, actor.id)
    if duty.role != "owner":
        raise Forbidden(f"只有场所负责人可以{what[0]} / only the venue's owner {what[1]}")
    return duty


def _pending(session: Session, venue_id: int, citizen_id: int) -> RegistrarInvitation | None:
    """The unanswered invitation of `citizen_id` to the venue, expired or not."""
    return session.exec(select(RegistrarInvitation).where(
        RegistrarInvitation.venue_id == venue_id, RegistrarInvitation.invitee_id == citizen_id,
        RegistrarInvitation.state == PENDING)).first()


def is_expired(invitation: RegistrarInvitation, now: datetime | None = None) -> bool:
    """Whether the invitation can no longer be accepted: `expires_at` has come."""
    return invitation.state == EXPIRED or (
        invitation.state == PENDING and (now or utcnow()) >= invitation.expires_at)


def invite_registrar(session: Session, *, venue_id: int, actor: Citizen, citizen_id: object,
                     valid_days: int = DEFAULT_INVITATION_DAYS, now: datetime | None = None
                     ) -> RegistrarInvitation:
    """The owner (green) invites citizen number `citizen_id` to be a co-registrar: a pending
    invitation, valid `valid_days`, the same whoever the number names (one already pending
    is returned again, unchanged; an expired one is closed and a new one made). 409 only
    when they already are a registrar here (the owner's own list shows that)."""
    now = now or utcnow()
    _require_owner(session, venue_id, actor, ("邀请登记员", "invites registrars"))
    require_green(actor)
    invitee = _clean_citizen_id(citizen_id)
    if session.exec(select(Registrar.id).where(
            Registrar.venue_id == venue_id, Registrar.citizen_id == invitee,
            Registrar.active.is_(True))).first() is not None:
        raise Conflict("已是该场所的登记员 / already a registrar of this venue")
    invitation = _pending(session, venue_id, invitee)
    if invitation is not None and is_expired(invitation, now):
        invitation.state = EXPIRED
        invitation.decided_at = invitation.expires_at
        session.add(invitation)
        invitation = None
    if invitation is None:
        invitation = RegistrarInvitation(venue_id=venue_id, inviter_id=actor.id,
                                         invitee_id=invitee, created_at=now,
                                         expires_at=now + timedelta(days=valid_days))
        session.add(invitation)
        session.flush()
    _audit(session, INVITE, actor=actor, venue_id=venue_id, citizen_id=invitee,
           invitation_id=invitation.id)
    session.commit()
    return invitation


def invitation_public(invitation: RegistrarInvitation, now: datetime | None = None) -> dict:
    """What the inviter gets (POST /api/venues/{id}/registrars) and the venue's list shows:
    the registrar fields of old (`role`, `active`: false until accepted), the state
    (`expired` once a pending one is past `expires_at`) and when it expires."""
    return {"id": invitation.id, "venue_id": invitation.venue_id,
            "citizen_id": invitation.invitee_id, "role": "co",
            "active": invitation.state == "accepted",
            "state": EXPIRED if is_expired(invitation, now) else invitation.state,
            "created_at": iso(invitation.created_at),
            "expires_at": iso(invitation.expires_at)}


def my_invitations(session: Session, *, citizen_id: int) -> list[dict]:
    """The invitee's invitations still open to an answer (pending, not expired), newest
    first, with the venue and who invited."""
    rows = session.exec(
        select(RegistrarInvitation, Venue, Citizen)
        .join(Venue, Venue.id == RegistrarInvitation.venue_id)
        .join(Citizen, Citizen.id == RegistrarInvitation.inviter_id)
        .where(RegistrarInvitation.invitee_id == citizen_id,
               RegistrarInvitation.state == PENDING,
               col(RegistrarInvitation.expires_at) > utcnow())
        .order_by(col(RegistrarInvitation.id).desc())).all()
    return [{"id": inv.id, "state": inv.state, "created_at": iso(inv.created_at),
             "expires_at": iso(inv.expires_at),
             "venue": {"id": venue.id, "name": venue.name, "district": venue.district,
                       "address": venue.address},
             "inviter_masked": mask_name(inviter.name)} for inv, venue, inviter in rows]


def _own_pending(session: Session, invitation_id: int, actor: Citizen,
                 now: datetime | None = None) -> RegistrarInvitation:
    """The caller's own invitation, still pending and not expired (404 for anyone else's:
    not even its existence is told; 410 invitation_expired once expired)."""
    invitation = session.get(RegistrarInvitation, invitation_id)
    if invitation is None or invitation.invitee_id != actor.id:
        raise NotFound("邀请不存在 / invitation not found")
    if is_expired(invitation, now):
        raise InvitationExpired(
            "邀请已过期，请场所负责人重新邀请 / this invitation has expired: ask the venue's "
            "owner to invite you again", detail={"expires_at": iso(invitation.expires_at)})
    if invitation.state != PENDING:
        raise Conflict("该邀请已处理 / this invitation was already answered or withdrawn")
    return invitation


def accept_invitation(session: Session, *, invitation_id: int, actor: Citizen,
                      now: datetime | None = None) -> RegistrarInvitation:
    """The invitee becomes a co-registrar, if green (403 registrar_not_green, to them only;
    the invitation stays pending and can be accepted once they are green again) and before
    it expires (410 invitation_expired)."""
    invitation = _own_pending(session, invitation_id, actor, now)
    require_green(actor)
    duty = session.exec(select(Registrar).where(
        Registrar.venue_id == invitation.venue_id, Registrar.citizen_id == actor.id)).first()
    if duty is None:
        session.add(Registrar(venue_id=invitation.venue_id, citizen_id=actor.id, role="co"))
    else:
        duty.active = True
        session.add(duty)
    _decide(session, invitation, "accepted", ACCEPT, actor)
    return invitation


def decline_invitation(session: Session, *, invitation_id: int, actor: Citizen
                       ) -> RegistrarInvitation:
    invitation = _own_pending(session, invitation_id, actor)
    _decide(session, invitation, "declined", DECLINE, actor)
    return invitation


def _decide(session: Session, invitation: RegistrarInvitation, state: str, action: str,
            actor: Citizen) -> None:
    invitation.state = state
    invitation.decided_at = utcnow()
    session.add(invitation)
    _audit(session, action, actor=actor, venue_id=invitation.venue_id,
           citizen_id=invitation.invitee_id, invitation_id=invitation.id)
    session.commit()


def remove_registrar(session: Session, *, venue_id: int, actor: Citizen, citizen_id: int
                     ) -> str:
    """End a co-registrar's duty: the owner removes one (or withdraws a pending invitation),
    a co-registrar leaves (citizen_id = their own). Returns what happened: "removed",
    "left" (their live feeds must close: the caller publishes access_changed after this
    commit) or "withdrawn"."""
    duty = require_registrar(session, venue_id, actor.id)
    if citizen_id == actor.id:
        if duty.role == "owner":
            raise Conflict("场所负责人不能退出 / the owner cannot leave their own venue")
        duty.active = False
        session.add(duty)
        _audit(session, LEAVE, actor=actor, venue_id=venue_id, citizen_id=actor.id)
        session.commit()
        return "left"
    _require_owner(session, venue_id, actor, ("移除登记员", "removes registrars"))
    target = session.exec(select(Registrar).where(
        Registrar.venue_id == venue_id, Registrar.citizen_id == citizen_id,
        Registrar.role == "co", Registrar.active.is_(True))).first()
    if target is not None:
        target.active = False
        session.add(target)
        _audit(session, REMOVE, actor=actor, venue_id=venue_id, citizen_id=citizen_id)
        session.commit()
        return "removed"
    invitation = _pending(session, venue_id, citizen_id)
    if invitation is None:
        raise NotFound("该场所没有这位登记员或待处理的邀请 / no such co-registrar or pending "
                       "invitation at this venue")
    invitation.state = "withdrawn"
    invitation.decided_at = utcnow()
    session.add(invitation)
    _audit(session, WITHDRAW, actor=actor, venue_id=venue_id, citizen_id=citizen_id,
           invitation_id=invitation.id)
    session.commit()
    return "withdrawn"


def venue_registrars(session: Session, *, venue_id: int, actor: Citizen) -> dict:
    """A venue's registrars (masked names, role) for any of its registrars; the unanswered
    invitations (by citizen number only; `expired` ones too, until withdrawn or replaced)
    for its owner."""
    duty = require_registrar(session, venue_id, actor.id)
    get_venue(session, venue_id)
    rows = session.exec(
        select(Registrar, Citizen).join(Citizen, Citizen.id == Registrar.citizen_id)
        .where(Registrar.venue_id == venue_id, Registrar.active.is_(True))
        .order_by(Registrar.id)).all()
    items = [{"citizen_id": c.id, "name_masked": mask_name(c.name), "role": r.role,
              "since": iso(r.created_at)} for r, c in rows]
    invitations = []
    if duty.role == "owner":
        invitations = [invitation_public(i) for i in session.exec(
            select(RegistrarInvitation).where(RegistrarInvitation.venue_id == venue_id,
                                              RegistrarInvitation.state == PENDING)
            .order_by(RegistrarInvitation.id)).all()]
    return {"items": items, "invitations": invitations}

