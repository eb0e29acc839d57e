"""The hub's bounded per-connection queues: a slow reader cannot stall anyone."""

import asyncio

from realtime.hub import RESYNC, Subscription


def test_overflow_replaces_backlog_with_a_resync():
    async def run():
        sub = Subscription(("c",), size=3)
        for i in range(10):
            sub.deliver({"id": i})
        items = sub.take()
        return sub.overflows, items

    overflows, items = asyncio.run(run())
    assert overflows >= 1
    assert RESYNC in items  # the connection will catch up from the database
    assert len(items) <= 3


def _event(checkin_id: int, venue_id: int) -> dict:
    return {"type": "checkin", "id": checkin_id, "venue_id": venue_id}


def test_a_checkin_batch_reaches_each_venue_and_a_gap_resyncs_first():
    from realtime.events import checkin_batch, venue_channel
    from realtime.hub import Hub

    async def run():
        hub = Hub("redis://127.0.0.1:1/0")  # never started: batches are handed in directly
        async with hub.subscribe(venue_channel(1)) as one, \
                hub.subscribe(venue_channel(2)) as two, \
                hub.subscribe("sb:citizen:5") as citizen:
            # The first batch after (re)connecting: nothing to compare with, so resync.
            hub._checkins(checkin_batch(0, [_event(1, 1), _event(2, 2), _event(3, 1)])[1])
            first = one.take(), two.take()
            hub._checkins(checkin_batch(3, [_event(4, 2)])[1])  # follows on: no resync
            second = one.take(), two.take()
            hub._checkins(checkin_batch(9, [_event(12, 1)])[1])  # 4..9 never arrived
            third = one.take(), two.take()
            return first, second, third, citizen.take(), hub.gaps

    first, second, third, citizen, gaps = asyncio.run(run())
    assert first == ([RESYNC, _event(1, 1), _event(3, 1)], [RESYNC, _event(2, 2)])
    assert second == ([], [_event(4, 2)])
    assert third == ([RESYNC, _event(12, 1)], [RESYNC])  # every venue feed catches up
    assert citizen == []  # the notice feed has its own sequence
    assert gaps == 1


def test_a_local_batch_goes_out_at_once_only_when_it_follows_on():
    from realtime.events import checkin_batch, venue_channel
    from realtime.hub import Hub

    e = {i: _event(i, 1) for i in range(1, 9)}

    async def run():
        hub = Hub("redis://127.0.0.1:1/0")  # never started: batches are handed in directly
        steps = []
        async with hub.subscribe(venue_channel(1)) as feed:
            # Just (re)connected, nothing known: our writer's batch waits for its Redis copy.
            steps.append((hub.local_checkins(0, [e[1]]), feed.take()))
            hub._checkins(checkin_batch(0, [e[1]])[1])
            steps.append(("redis", feed.take()))
            # Follows on from the last batch delivered: out at once, and its copy is skipped.
            steps.append((hub.local_checkins(1, [e[2], e[3]]), feed.take()))
            hub._checkins(checkin_batch(1, [e[2], e[3]])[1])
            steps.append(("redis", feed.take()))
            # Another process's batch (4, 5) is still on its way through Redis when ours (6)
            # is answered: ours must not overtake it (the feed would skip 4 and 5).
            steps.append((hub.local_checkins(5, [e[6]]), feed.take()))
            hub._checkins(checkin_batch(3, [e[4], e[5]])[1])
            hub._checkins(checkin_batch(5, [e[6]])[1])
            steps.append(("redis", feed.take()))
            # Ours (7) goes out at once and its PUBLISH fails (no copy comes); the copy of
            # our next one (8) is still no gap.
            steps.append((hub.local_checkins(6, [e[7]]), feed.take()))
            steps.append((hub.local_checkins(7, [e[8]]), feed.take()))
            hub._checkins(checkin_batch(7, [e[8]])[1])
            steps.append(("redis", feed.take()))
            # The database is reset under us: ids start again, and the new first batch (1)
            # must not be taken for a copy of ours.
            hub._checkins(checkin_batch(0, [e[1]])[1])
            steps.append(("redis", feed.take()))
            hub._seq.clear()  # what a reconnect does
            steps.append((hub.local_checkins(1, [e[2]]), feed.take()))
            return steps, hub.gaps, hub.local_batches

    steps, gaps, local = asyncio.run(run())
    assert steps == [
        (False, []),
        ("redis", [RESYNC, e[1]]),
        (True, [e[2], e[3]]),
        ("redis", []),  # no repeat, and no resync either
        (False, []),
        ("redis", [e[4], e[5], e[6]]),
        (True, [e[7]]),
        (True, [e[8]]),
        ("redis", []),
        ("redis", [RESYNC, e[1]]),  # a gap: the feeds catch up from the database
        (False, []),
    ]
    assert gaps == 1 and local == 3


def test_an_access_change_reaches_the_venues_feeds_and_the_holders_connections():
    from realtime.events import access_message, venue_channel
    from realtime.hub import RECHECK, Hub

    async def run():
        hub = Hub("redis://127.0.0.1:1/0")  # never started: messages are handed in directly
        async with hub.subscribe(venue_channel(1), holder=7) as seven_at_1, \
                hub.subscribe(venue_channel(2), holder=7) as seven_at_2, \
                hub.subscribe(venue_channel(1), holder=8) as eight_at_1, \
                hub.subscribe(venue_channel(3), holder=None) as official_at_3, \
                hub.subscribe("sb:citizen:8", holder=8) as eight_me:
            hub._access(access_message(citizens=[7])[1])
            by_citizen = [s.take() for s in (seven_at_1, seven_at_2, eight_at_1,
                                             official_at_3, eight_me)]
            hub._access(access_message(venues=[1, 3])[1])
            by_venue = [s.take() for s in (seven_at_1, seven_at_2, eight_at_1,
                                           official_at_3, eight_me)]
        return by_citizen, by_venue, hub._held

    by_citizen, by_venue, held = asyncio.run(run())
    assert by_citizen == [[RECHECK], [RECHECK], [], [], []]
    assert by_venue == [[RECHECK], [], [RECHECK], [RECHECK], []]
    assert held == {}  # unsubscribing forgets the holders
