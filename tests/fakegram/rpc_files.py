"""RPC handlers of ``upload.*``: file parts in, file chunks out (with Telegram's limits)."""

from __future__ import annotations

import asyncio

from telethon.tl import functions, types

from .records import RpcFail
from .rpc import RpcContext, handles

# getFile limits, as documented for upload.getFile.
FILE_CHUNK_ALIGN = 4096
PRECISE_CHUNK_ALIGN = 1024
MAX_FILE_CHUNK = 1024 * 1024


@handles(functions.upload.SaveFilePartRequest)
def save_file_part(ctx: RpcContext, request: functions.upload.SaveFilePartRequest) -> bool:
    ctx.world.save_file_part(ctx.user, request.file_id, request.file_part, request.bytes)
    return True


@handles(functions.upload.SaveBigFilePartRequest)
def save_big_file_part(ctx: RpcContext, request: functions.upload.SaveBigFilePartRequest) -> bool:
    if not 0 <= request.file_part < request.file_total_parts:
        raise RpcFail(400, "FILE_PART_INVALID")
    ctx.world.save_file_part(ctx.user, request.file_id, request.file_part, request.bytes)
    return True


@handles(functions.upload.GetFileRequest)
async def get_file(ctx: RpcContext, request: functions.upload.GetFileRequest) -> types.upload.File:
    record = ctx.world.file_for_location(request.location)
    if record.dc_id != ctx.dc_id:
        # "303 SEE_OTHER: the request must be repeated, but directed to a different data
        # center": FILE_MIGRATE_X (core.telegram.org/api/errors).
        raise RpcFail(303, f"FILE_MIGRATE_{record.dc_id}")
    offset, limit = request.offset, request.limit
    # Same constraints as Telegram, so a client asking for odd chunks fails here too.
    align = PRECISE_CHUNK_ALIGN if request.precise else FILE_CHUNK_ALIGN
    if limit <= 0 or limit > MAX_FILE_CHUNK or limit % align or (not request.precise and MAX_FILE_CHUNK % limit):
        raise RpcFail(400, "LIMIT_INVALID")
    crosses_megabyte = offset // MAX_FILE_CHUNK != (offset + limit - 1) // MAX_FILE_CHUNK
    if offset < 0 or offset % align or (not request.precise and crosses_megabyte):
        raise RpcFail(400, "OFFSET_INVALID")
    if ctx.get_file_delay:
        await asyncio.sleep(ctx.get_file_delay)
    file_type = types.storage.FileJpeg() if record.is_photo else types.storage.FileUnknown()
    return types.upload.File(type=file_type, mtime=record.date, bytes=record.data[offset : offset + limit])
