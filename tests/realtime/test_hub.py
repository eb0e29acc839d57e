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


def test_a_batch_s_checkouts_reach_their_venues_after_its_checkins():
    from realtime.events import checkin_batch, venue_channel
    from realtime.hub import Hub

    def checkout(checkin_id: int, venue_id: int) -> dict:
        return {"type": "checkout", "id": checkin_id, "venue_id": venue_id,
                "left_at": "2026-12-06T12:00:00+08:00"}

    async def run():
        hub = Hub("redis://127.0.0.1:1/0")  # never started: batches are handed in directly
        async with hub.subscribe(venue_channel(1)) as one, \
                hub.subscribe(venue_channel(2)) as two:
            # Citizens who were at venue 2 (stays 3, 4) and venue 1 (stay 5) arrive at venue 1.
            channel, message = checkin_batch(
                {1: 0}, [_event(8, 1), _event(9, 1), _event(10, 1)],
                [checkout(3, 2), checkout(5, 1), checkout(4, 2)])
            hub._checkins(message)
            return channel, one.take(), two.take()

    channel, one, two = asyncio.run(run())
    assert channel == "sb:checkins"
    assert one == [_event(8, 1), _event(9, 1), _event(10, 1), checkout(5, 1)]
    assert two == [checkout(3, 2), checkout(4, 2)]


def test_a_checkin_batch_reaches_each_venue_and_a_gap_resyncs_that_venue_first():
    from realtime.events import checkin_batch, venue_channel
    from realtime.hub import Hub

    def batch(before: dict, *events):
        return checkin_batch(before, list(events))[1]

    async def run():
        hub = Hub("redis://127.0.0.1:1/0")  # never started: batches are handed in directly
        async with hub.subscribe(venue_channel(1)) as one, \
                hub.subscribe(venue_channel(2)) as two, \
                hub.subscribe(venue_channel(3)) as three, \
                hub.subscribe("sb:citizen:5") as citizen:
            steps = []
            # Just (re)connected: venue 1's batch follows ids we never saw, so its feeds
            # resync; venue 2's is its first batch ever (prev 0): nothing to catch up.
            hub._checkins(batch({1: 7, 2: 0}, _event(8, 1), _event(9, 2), _event(10, 1)))
            steps.append((one.take(), two.take(), three.take()))
            # Each venue follows on from its own last id, whatever the others did between.
            hub._checkins(batch({2: 9}, _event(14, 2)))
            hub._checkins(batch({1: 10, 3: 0}, _event(15, 1), _event(16, 3)))
            steps.append((one.take(), two.take(), three.take()))
            # A batch of venue 2 (ids 17..20) never arrived: only venue 2 catches up.
            hub._checkins(batch({2: 20, 1: 15}, _event(21, 2), _event(22, 1)))
            steps.append((one.take(), two.take(), three.take()))
            return steps, citizen.take(), hub.gaps

    steps, citizen, gaps = asyncio.run(run())
    assert steps == [
        ([RESYNC, _event(8, 1), _event(10, 1)], [_event(9, 2)], []),
        ([_event(15, 1)], [_event(14, 2)], [_event(16, 3)]),
        ([_event(22, 1)], [RESYNC, _event(21, 2)], []),
    ]
    assert citizen == []  # check-ins never reach a citizen's notice feed
    assert gaps == 1  # the reconnect's unknown is not counted as a gap


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
