#!/bin/sh
# Build a small, fully static ffmpeg + ffprobe for the runtime image.
#
# Why: pydub shells out to the `ffmpeg` and `ffprobe` programs. Debian's
# `ffmpeg` package drags in ~200 packages (~440 MB installed: LLVM, Mesa, X11,
# ICU, every codec library), which alone would break the ~550 MB image budget.
# pydub only needs to *read* audio and write PCM/WAV, so this build keeps the
# native (in-tree) audio decoders and demuxers that Telegram media can carry
# and nothing else: no external libraries, no network, no devices, no video
# decoding. Result: two static binaries of ~4 MB each that need no shared
# library at all, so they run on the Debian runtime and the Ubuntu CUDA image
# alike (same CPU architecture as the build).
#
# Source: Debian's own ffmpeg source package (`apt-get source`), so it is
# fetched from the same archive, with the same signatures and security
# patches, as every other package in the image.
#
# Usage: build-ffmpeg.sh PREFIX        (needs deb-src enabled, gcc, make, nasm, dpkg-dev)
#        FFMPEG_SRC=/path/to/tree build-ffmpeg.sh PREFIX   (use an unpacked tree)
set -eu

prefix=${1:?usage: build-ffmpeg.sh PREFIX}
jobs=$(nproc 2>/dev/null || echo 2)

if [ -z "${FFMPEG_SRC:-}" ]; then
    work=$(mktemp -d)
    cd "$work"
    apt-get source --quiet ffmpeg >/dev/null
    FFMPEG_SRC=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | head -n 1)
fi
cd "$FFMPEG_SRC"

# Components. Decoders/demuxers: what Telegram voice notes (ogg/opus), audio
# files (mp3, m4a/aac, flac, wav, ogg/vorbis, wma, amr, alac, ac3) and video
# notes/videos (mp4/mkv/webm audio track; the video stream is ignored with -vn)
# can contain. Encoders/muxers: what pydub writes (PCM in WAV/raw, plus FLAC).
# Filters: what ffmpeg inserts for -ar/-ac/-sample_fmt conversions and pydub's
# common parameters.
decoders='aac,aac_fixed,aac_latm,ac3,ac3_fixed,eac3,alac,amrnb,amrwb,flac,mp1,mp1float,mp2,mp2float,mp3,mp3float,mp3adu,mp3on4,opus,vorbis,wavpack,wmav1,wmav2,wmapro,wmalossless,gsm,gsm_ms,adpcm_ima_wav,adpcm_ms,pcm*'
demuxers='ogg,matroska,mov,mp3,wav,w64,flac,aac,ac3,eac3,amr,aiff,caf,wv,asf,avi,mpegts,mpegps,gsm,pcm*'
parsers='aac,aac_latm,ac3,flac,mpegaudio,opus,vorbis,gsm'
encoders='pcm*,flac'
muxers='wav,w64,flac,null,pcm*'
filters='aresample,aformat,anull,atrim,asetnsamples,apad,volume,pan,amix,channelmap,channelsplit,asplit,afade,silenceremove,loudnorm,dynaudnorm,highpass,lowpass,aecho,atempo'

./configure \
    --prefix="$prefix" \
    --disable-everything \
    --disable-autodetect \
    --disable-debug \
    --disable-doc \
    --disable-ffplay \
    --disable-network \
    --disable-avdevice \
    --disable-postproc \
    --disable-swscale \
    --disable-shared \
    --enable-static \
    --pkg-config-flags=--static \
    --extra-ldflags=-static \
    --enable-protocol=file,pipe \
    --enable-decoder="$decoders" \
    --enable-demuxer="$demuxers" \
    --enable-parser="$parsers" \
    --enable-encoder="$encoders" \
    --enable-muxer="$muxers" \
    --enable-filter="$filters"

make -j"$jobs" ffmpeg ffprobe
install -d "$prefix/bin"
install -m 0755 -s ffmpeg ffprobe "$prefix/bin/"
"$prefix/bin/ffmpeg" -hide_banner -version | head -n 1
