"""fakegram self-tests: who is in a chat (channels.getParticipants, messages.getFullChat) and
the address book (contacts.getContacts), driven by real Telethon clients."""

from __future__ import annotations

import pytest
from telethon import functions, types
from telethon.errors import ChannelPrivateError, ChatAdminRequiredError, ChatIdInvalidError

from tests.fakegram import Fakegram
from tests.fakegram.testing import input_peer

pytestmark = [pytest.mark.asyncio(loop_scope="function"), pytest.mark.wire]


def recent(channel, limit=10, offset=0):
    return functions.channels.GetParticipantsRequest(
        channel=channel, filter=types.ChannelParticipantsRecent(), offset=offset, limit=limit, hash=0
    )


async def test_a_supergroups_members_are_listed_to_members_with_the_total(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    outsider = await fakegram.new_user("Olga", username="olga")
    a = fakegram.user_of(alice)
    bob, carol = fakegram.create_user("Bob"), fakegram.create_user("Carol", last_name="Nguyen")
    group = fakegram.create_supergroup("Club", a, [bob, carol])
    peer = await input_peer(alice, group)
    channel = types.InputChannel(peer.channel_id, peer.access_hash)

    result = await alice(recent(channel))
    assert result.count == 3
    assert {p.user_id for p in result.participants} == {a.id, bob.id, carol.id}
    assert {u.id: u.last_name for u in result.users}[carol.id] == "Nguyen"  # the users come along
    page = await alice(recent(channel, limit=1))
    assert page.count == 3 and len(page.participants) == len(page.users) == 1  # count is the total

    with pytest.raises(ChannelPrivateError):  # not a member of a private group
        await outsider(recent(channel))


async def test_a_broadcast_channels_subscribers_are_only_for_its_admins(fakegram: Fakegram) -> None:
    owner = await fakegram.new_user("Owner", username="chanowner")
    reader = await fakegram.new_user("Reader", username="reader")
    o, r = fakegram.user_of(owner), fakegram.user_of(reader)
    channel = fakegram.create_channel("News", o, [r])
    peer = await input_peer(reader, channel)
    with pytest.raises(ChatAdminRequiredError):
        await reader(recent(types.InputChannel(peer.channel_id, peer.access_hash)))
    mine = await input_peer(owner, channel)
    listed = await owner(recent(types.InputChannel(mine.channel_id, mine.access_hash)))
    assert listed.count == 2


async def test_a_basic_groups_full_chat_lists_members_only_to_members(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    outsider = await fakegram.new_user("Olga", username="olga")
    a = fakegram.user_of(alice)
    bob = fakegram.create_user("Bob")
    group = fakegram.create_group("Trip", a, [bob])
    full = await alice(functions.messages.GetFullChatRequest(group.id))
    assert {p.user_id for p in full.full_chat.participants.participants} == {a.id, bob.id}
    with pytest.raises(ChatIdInvalidError):
        await outsider(functions.messages.GetFullChatRequest(group.id))


async def test_contacts_are_the_address_book_in_order(fakegram: Fakegram) -> None:
    alice = await fakegram.new_user("Alice", username="alice")
    a = fakegram.user_of(alice)
    bob, carol = fakegram.create_user("Bob"), fakegram.create_user("Carol")
    assert (await alice(functions.contacts.GetContactsRequest(hash=0))).contacts == []
    fakegram.add_contact(a, carol)
    fakegram.add_contact(a, bob)
    fakegram.add_contact(bob, a)
    result = await alice(functions.contacts.GetContactsRequest(hash=0))
    assert [(c.user_id, c.mutual) for c in result.contacts] == [(carol.id, False), (bob.id, True)]
    assert [u.first_name for u in result.users] == ["Carol", "Bob"]
