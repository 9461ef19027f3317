"""The Python baseline of bench/runner/run: an asyncio + aiohttp client that POSTs one request
body N times with C requests in flight (one keep-alive connection each), parses every JSON answer
as an evaluation client would, and prints the requests per second.

Usage: /usr/bin/python3 aiohttp_client.py URL BODY_FILE TOTAL CONCURRENCY
(Debian's python3-aiohttp is installed for /usr/bin/python3.)
"""
import asyncio
import sys
import time

import aiohttp


async def run(url: str, body: bytes, total: int, concurrency: int) -> float:
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    remaining = iter(range(total))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                async with session.post(url, data=body, headers=headers) as resp:
                    payload = await resp.json(content_type=None)
                    if resp.status != 200 or "choices" not in payload:
                        raise SystemExit(f"unexpected answer: HTTP {resp.status}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


def main() -> None:
    url, body_file, total, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(body_file, "rb") as f:
        body = f.read()
    print(f"{asyncio.run(run(url, body, total, concurrency)):.1f}")


if __name__ == "__main__":
    main()
