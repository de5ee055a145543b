"""Make a long video from a short one without re-encoding: its packets written N times, back to back.

    python benchmarks/repeat_video.py IN.mp4 OUT.mp4 --times 10

For memory benchmarks: a 10-minute video from a 1-minute render, in seconds rather than an hour.
"""
from __future__ import annotations

import argparse

import av


def repeat(source: str, target: str, times: int) -> None:
    with av.open(source) as inp, av.open(target, "w", options={"fflags": "+bitexact"}) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        packets = [p for p in inp.demux(stream) if p.size]
        stamps = [(p.pts, p.dts) for p in packets]
        span = max(pts for pts, _ in stamps) - min(pts for pts, _ in stamps) + packets[1].duration
        for k in range(times):
            for packet, (pts, dts) in zip(packets, stamps, strict=True):
                packet.time_base = stream.time_base  # muxing rescales a packet in place: start from the source's units
                packet.pts, packet.dts = pts + k * span, dts + k * span
                packet.stream = copy
                out.mux(packet)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--times", type=int, default=10)
    args = parser.parse_args()
    repeat(args.source, args.target, args.times)


if __name__ == "__main__":
    main()
