"""Media signaling: offers, answers and ICE candidates relayed to the room's media worker."""

from __future__ import annotations

from config import errors
from records.enums import ParticipantRole, SessionState
from records.policy import Action, may_publish, require
from signaling import bus_messages as B
from signaling import events as E
from signaling import protocol as P
from signaling.context import Context
from signaling.messages import MediaAnswer, MediaCandidate, MediaOffer
from signaling.registry import Reply, command


@command(MediaOffer)
async def media_offer(ctx: Context, req: MediaOffer) -> Reply:
    """Relay a client's SDP offer to the room's worker, placing the room if needed."""
    member = ctx.member(req.session)
    if not member.admitted:
        raise errors.AccessDenied("wait to be admitted before sending media")
    s = await ctx.session(member.session_id, member.principal)
    if P.sdp_sends_media(req.sdp):
        if not may_publish(member.role):
            raise errors.AccessDenied(
                f"a {member.role.value} watches session {s.id}; only the trainer or a"
                " promoted speaker publishes"
            )
        if member.role is not ParticipantRole.SPEAKER:
            # a speaker's right to publish comes from the promotion (a moderator's act)
            require(member.principal, Action.PUBLISH_MEDIA, s.target(), ctx.tree)
    if s.state is not SessionState.LIVE:
        raise errors.InvalidTransition(
            f"session {s.id} is {s.state.value}; media needs a live session"
        )
    home, placed = await ctx.placement.place(s.id)
    if home is None:
        raise P.ProtocolError(P.MEDIA_UNAVAILABLE, "no media worker is available", ctx.request_id)
    ctx.relay.room_workers[s.id] = home
    if placed:
        await ctx.bus.publish(
            B.worker_channel(home),
            B.RoomOpen(
                session_id=s.id,
                codec=ctx.settings.codec,
                record=s.recorded,
                meta=B.RoomMeta(
                    kind=s.kind.value, unit_id=s.unit_id, reply_to=B.hub_channel(ctx.hub_id)
                ),
            ),
        )
    spot = await ctx.placement.place_peer(
        s.id,
        member.participant_id,
        home,
        publishing=P.sdp_sends_media(req.sdp),
        restart=bool(req.restart),
    )
    if spot.move_home:
        # a speaker promoted while watching from a relay: its connection stays there (no ICE
        # restart in aiortc), but its media must come from the home, which records the room.
        # media.lost makes it offer again from a new connection (its tracks included),
        # placed on the home; this offer is left unanswered.
        member.media_connected = False
        ctx.relay.peer_workers.pop(member.participant_id, None)
        member_conn = member.conn
        if member_conn is not None:
            member_conn.send(E.MediaLost(session=s.id, reason="publish from the home"))
        return {"worker": home, "moved": True}
    worker = spot.worker
    ctx.relay.peer_workers[member.participant_id] = worker
    # a relay serves its viewers from the publishers' origins; it records nothing
    relay_open = B.RoomSettings(
        codec=ctx.settings.codec,
        record=False,
        meta=B.RoomMeta(
            kind=s.kind.value, unit_id=s.unit_id, reply_to=B.hub_channel(ctx.hub_id), relay=True
        ),
    )
    if spot.new_relay:
        await ctx.bus.publish(
            B.worker_channel(worker), B.RoomOpen(session_id=s.id, **relay_open.model_dump())
        )
    if req.restart:
        # a new RTCPeerConnection (the old one failed or its worker died): it subscribes
        # to the publishers once connected, whatever this hub knew of the old one
        member.media_connected = False
        # the worker's peer belongs to the old connection and cannot renegotiate with the
        # new one (aiortc has no ICE restart): close it on the channel the offer takes, so
        # the worker closes it first
        close = B.PeerClose(session_id=s.id, peer=member.participant_id)
        if spot.previous is not None:
            await ctx.relay.close_elsewhere(spot.previous, close)
        elif not placed:
            await ctx.bus.publish(B.worker_channel(worker), close)
    await ctx.bus.publish(
        B.worker_channel(worker),
        B.PeerOffer(
            session_id=s.id,
            peer=member.participant_id,
            sdp=req.sdp,
            reply_to=B.hub_channel(ctx.hub_id),
            may_publish=may_publish(member.role),
            info=B.PeerInfo(
                name=member.principal.name,
                role=member.role.value,
                unit_id=member.principal.unit_id,
            ),
            # another hub's room.open may reach a new relay after this offer (hubs publish
            # on their own connections): the relay opens the room itself if it must
            open=relay_open if worker != home else None,
        ),
    )
    return {"worker": worker}


@command(MediaAnswer)
async def media_answer(ctx: Context, req: MediaAnswer) -> Reply:
    """Relay a client's SDP answer (to a worker's re-offer)."""
    member = ctx.member(req.session)
    await ctx.relay.send(
        B.PeerAnswer(session_id=member.session_id, peer=member.participant_id, sdp=req.sdp)
    )
    return {}


@command(MediaCandidate)
async def media_candidate(ctx: Context, req: MediaCandidate) -> Reply:
    """Relay a client's ICE candidate (null: end of candidates)."""
    member = ctx.member(req.session)
    await ctx.relay.send(
        B.PeerCandidate(
            session_id=member.session_id, peer=member.participant_id, candidate=req.candidate
        )
    )
    return {}
