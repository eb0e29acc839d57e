"""留言栏 as a conversation: a citizen writes to the health authority, an official replies
(and marks it handled), the citizen reads the reply and may answer. Officials' writes are
audited; what officials see of the sender is masked."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.audit import Actor, as_actor, record
from models.errors import NotFound, ValidationFailed
from models.masking import mask_id_number, mask_name
from models.tables import Citizen, Message, MessageReply, utcnow
from models.timeutil import iso

MAX_TEXT = 2000
MESSAGE_REPLY = "message_reply"
MESSAGE_HANDLED = "message_handled"


def clean_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValidationFailed("留言内容须为1–2000字 / text must be 1–2000 characters")
    return value.strip()


def _reply_public(reply: MessageReply) -> dict:
    return {"id": reply.id, "from": "official" if reply.from_official else "citizen",
            "text": reply.text, "at": iso(reply.at)}


def _public(message: Message, replies: list[MessageReply]) -> dict:
    return {"id": message.id, "text": message.text, "at": iso(message.at),
            "handled": message.handled_at is not None,
            "handled_at": iso(message.handled_at) if message.handled_at else None,
            "replies": [_reply_public(r) for r in replies]}


def _replies(session: Session, ids: list[int]) -> dict[int, list[MessageReply]]:
    found: dict[int, list[MessageReply]] = {i: [] for i in ids}
    if ids:
        for reply in session.exec(select(MessageReply).where(
                col(MessageReply.message_id).in_(ids)).order_by(col(MessageReply.id))).all():
            found[reply.message_id].append(reply)
    return found


def post_message(session: Session, *, citizen_id: int, text: object) -> dict:
    message = Message(citizen_id=citizen_id, text=clean_text(text))
    session.add(message)
    session.commit()
    return _public(message, [])


def my_messages(session: Session, *, citizen_id: int, limit: int = 20) -> list[dict]:
    """A citizen's own conversations, newest first."""
    messages = session.exec(select(Message).where(Message.citizen_id == citizen_id)
                            .order_by(col(Message.id).desc()).limit(limit)).all()
    replies = _replies(session, [m.id for m in messages])
    return [_public(m, replies[m.id]) for m in messages]


def follow_up(session: Session, *, citizen_id: int, message_id: int, text: object) -> dict:
    """The citizen answers in their own conversation; it needs an official's eyes again."""
    message = session.get(Message, message_id)
    if message is None or message.citizen_id != citizen_id:
        raise NotFound("留言不存在 / message not found")
    reply = MessageReply(message_id=message.id, from_official=False,
                         actor=f"citizen:{citizen_id}", text=clean_text(text))
    message.handled_at, message.handled_by = None, None
    session.add_all([reply, message])
    session.commit()
    return _reply_public(reply)


def list_messages(session: Session, *, before: int | None = None, limit: int = 50,
                  handled: bool | None = None) -> list[dict]:
    """Citizens' messages for officials, newest first, the sender masked; handled=False
    lists what still waits for an official."""
    query = (select(Message, Citizen.name, Citizen.id_number)
             .join(Citizen, Citizen.id == Message.citizen_id)
             .order_by(col(Message.id).desc()).limit(limit))
    if before is not None:
        query = query.where(col(Message.id) < before)
    if handled is not None:
        query = query.where(col(Message.handled_at).is_not(None) if handled
                            else col(Message.handled_at).is_(None))
    rows = session.exec(query).all()
    replies = _replies(session, [m.id for m, _, _ in rows])
    return [{**_public(m, replies[m.id]), "citizen_id": m.citizen_id,
             "name_masked": mask_name(name), "id_masked": mask_id_number(id_number),
             "handled_by": m.handled_by} for m, name, id_number in rows]


def _message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("留言不存在 / message not found")
    return message


def reply(session: Session, *, message_id: int, actor: Actor | str, text: object,
          handled: object = True, detail: dict | None = None) -> dict:
    """An official's reply; it marks the message handled unless handled=False."""
    if not isinstance(handled, bool):
        raise ValidationFailed("handled 须为 true 或 false / handled must be true or false")
    message = _message(session, message_id)
    tag = as_actor(actor).tag[:64]  # "official:<id>": who answered
    answer = MessageReply(message_id=message.id, from_official=True, actor=tag,
                          text=clean_text(text))
    if handled:
        message.handled_at, message.handled_by = utcnow(), tag
    session.add_all([answer, message])
    session.flush()
    record(session, actor=actor, action=MESSAGE_REPLY, target=f"message:{message.id}",
           citizen_id=message.citizen_id, purpose="回复居民留言 / reply to a citizen's message",
           detail={**(detail or {}), "reply_id": answer.id, "handled": handled})
    session.commit()
    return _public(message, _replies(session, [message.id])[message.id])


def set_handled(session: Session, *, message_id: int, actor: Actor | str, handled: object,
                detail: dict | None = None) -> dict:
    """Mark a message handled (or open it again)."""
    if not isinstance(handled, bool):
        raise ValidationFailed("handled 须为 true 或 false / handled must be true or false")
    message = _message(session, message_id)
    tag = as_actor(actor).tag[:64]
    message.handled_at, message.handled_by = (utcnow(), tag) if handled else (None, None)
    session.add(message)
    record(session, actor=actor, action=MESSAGE_HANDLED, target=f"message:{message.id}",
           citizen_id=message.citizen_id, purpose="处理居民留言 / a citizen's message handled",
           detail={**(detail or {}), "handled": handled})
    session.commit()
    return _public(message, _replies(session, [message.id])[message.id])
