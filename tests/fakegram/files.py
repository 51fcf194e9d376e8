"""Uploaded files, their file references, and the checks ``upload.getFile`` makes.

A file reference is a token that expires (core.telegram.org/api/file_reference): a download or
re-send with a stale one fails with 400 FILE_REFERENCE_EXPIRED and the client must refetch the
message for a fresh reference (Telethon does, client/downloads.py ``_DirectDownloadIter._request``).
"""

from __future__ import annotations

import hashlib
import os
import random

from telethon.tl import TLObject, types

from .records import DC_ID, UPLOAD_PART_MAX, FileRecord, RpcFail, UserRecord, now


class Files:
    files: dict[int, FileRecord]
    _uploads: dict[tuple[int, int], dict[int, bytes]]
    _file_ids: object

    def save_file_part(self, user: UserRecord, file_id: int, part: int, data: bytes) -> None:
        if part < 0:
            raise RpcFail(400, "FILE_PART_INVALID")
        if not data:
            raise RpcFail(400, "FILE_PART_EMPTY")
        if len(data) > UPLOAD_PART_MAX:
            raise RpcFail(400, "FILE_PART_SIZE_INVALID")
        self._uploads.setdefault((user.id, file_id), {})[part] = data

    def store_upload(
        self,
        user: UserRecord,
        input_file: TLObject,
        *,
        mime_type: str,
        attributes: list[TLObject],
        is_photo: bool = False,
    ) -> FileRecord:
        """Assemble the parts of an ``InputFile``/``InputFileBig`` into a stored file."""
        if not isinstance(input_file, (types.InputFile, types.InputFileBig)):
            raise RpcFail(400, "FILE_INVALID")
        parts = self._uploads.get((user.id, input_file.id), {})
        for index in range(input_file.parts):
            if index not in parts:
                raise RpcFail(400, f"FILE_PART_{index}_MISSING")
        data = b"".join(parts[i] for i in range(input_file.parts))
        if (
            isinstance(input_file, types.InputFile)
            and input_file.md5_checksum
            and hashlib.md5(data).hexdigest() != input_file.md5_checksum
        ):
            raise RpcFail(400, "MD5_CHECKSUM_INVALID")
        if not any(isinstance(a, types.DocumentAttributeFilename) for a in attributes) and not is_photo:
            attributes = [*attributes, types.DocumentAttributeFilename(input_file.name)]
        return self.add_file(data, mime_type=mime_type, attributes=attributes, is_photo=is_photo)

    def add_file(
        self, data: bytes, *, mime_type: str, attributes: list[TLObject], is_photo: bool = False
    ) -> FileRecord:
        record = FileRecord(
            id=next(self._file_ids),
            access_hash=random.getrandbits(63),
            file_reference=os.urandom(8),
            date=now(),
            mime_type=mime_type,
            data=data,
            attributes=attributes,
            is_photo=is_photo,
            dc_id=getattr(self, "file_dc", DC_ID),
        )
        self.files[record.id] = record
        return record

    def expire_file_references(self) -> None:
        """Rotate every file's reference: all references handed out so far are stale."""
        for record in self.files.values():
            record.file_reference = os.urandom(8)

    def existing_file(self, input_file: TLObject) -> FileRecord:
        """An ``InputDocument``/``InputPhoto`` (re-sending a file already on the server)."""
        record = self.files.get(getattr(input_file, "id", 0))
        if record is None or record.access_hash != getattr(input_file, "access_hash", None):
            raise RpcFail(400, "MEDIA_INVALID")
        self._check_reference(record, input_file.file_reference)
        return record

    def file_for_location(self, location: TLObject) -> FileRecord:
        if isinstance(location, (types.InputDocumentFileLocation, types.InputPhotoFileLocation)):
            record = self.files.get(location.id)
            is_photo = isinstance(location, types.InputPhotoFileLocation)
            # Documents have no thumbnails here, so only the full file (thumb_size '') exists.
            if (
                record
                and record.access_hash == location.access_hash
                and record.is_photo == is_photo
                and (is_photo or not location.thumb_size)
            ):
                self._check_reference(record, location.file_reference)
                return record
        raise RpcFail(400, "LOCATION_INVALID")

    @staticmethod
    def _check_reference(record: FileRecord, reference: bytes) -> None:
        # core.telegram.org/method/upload.getFile: 400 FILE_REFERENCE_EXPIRED "File reference
        # expired, it must be refetched as described in the documentation".
        if not reference:
            raise RpcFail(400, "FILE_REFERENCE_EMPTY")
        if reference != record.file_reference:
            raise RpcFail(400, "FILE_REFERENCE_EXPIRED")
