"""Drives tam's MCP server with the official Python SDK (`mcp` 2.3.0), so the Rust integration
tests check tam against a real third-party client instead of rmcp talking to itself.

Usage:
    mcp_client.py stdio [--mode M] [--timeout S] -- COMMAND [ARGS...]
    mcp_client.py http URL [--token TOKEN] [--session-token-swap TOKEN2] [--mode M] [--timeout S]

Reads a plan from stdin: {"calls": [{"tool": NAME, "arguments": {...}}, ...], "resources": [URI, ...]}.
Connects (stdio: spawns COMMAND with this environment; http: Streamable HTTP with
`Authorization: Bearer TOKEN`), initializes, lists tools, resources and resource templates (every
page), makes each call in order, reads each resource, and prints ONE JSON object on stdout:

    {"server": {"name", "version", "protocolVersion"}, "session_id": Mcp-Session-Id or null,
     "tools": [{"name", "description", "inputSchema", "outputSchema"}],
     "resources": [{"uri", "name", "mimeType"}], "resource_templates": [{"uriTemplate", "name"}],
     "list_errors": {METHOD: message},           # a listing the server refused, e.g. templates
     "swap": {"status", "body"},                 # only with --session-token-swap
     "results": [{"tool", "isError", "structuredContent", "text"}
                 or {"tool", "protocol_error", "code"}],
     "reads": [{"uri", "mimeType", "text"} or {"uri", "error"}]}

"text" is the text content blocks concatenated with no separator. If the connection fails
(spawn error, HTTP 401, ...) it prints {"connect_error": message} (with the HTTP status and body
when there was one) and exits 0, so the test can assert on it.

--mode legacy (the default) uses the initialize handshake, i.e. a stateful session with an
Mcp-Session-Id over HTTP. The SDK's own default, "auto", first probes `server/discover` and
switches to the sessionless 2026-07-28 protocol if the server offers it (rmcp 3.11 does unless
`supported_protocol_versions` is narrowed); pass --mode auto to test that path.
"""

import argparse
import json
import os
import sys
from contextlib import AsyncExitStack

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent, TextResourceContents
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

# What a server can get wrong in one request without the connection being lost: a JSON-RPC
# error (MCPError), a result the SDK cannot parse for the negotiated version (ValidationError),
# and, for tools/call, structuredContent missing or failing the tool's outputSchema: the SDK
# checks that itself and raises RuntimeError. All three are recorded as protocol errors.
REQUEST_ERRORS = (MCPError, ValidationError, RuntimeError)


def parse_args() -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mode", default="legacy", choices=["legacy", "auto", *MODERN_PROTOCOL_VERSIONS])
    common.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    # The common options go on the subcommands only: argparse lets a subparser's defaults
    # overwrite values given to the main parser.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="transport", required=True)
    stdio = sub.add_parser("stdio", parents=[common])
    stdio.add_argument("command", nargs="+", help="after --: the server command and its arguments")
    http = sub.add_parser("http", parents=[common])
    http.add_argument("url")
    http.add_argument("--token")
    http.add_argument("--session-token-swap", metavar="TOKEN2")
    return parser.parse_args()


def describe(exc: BaseException) -> list[str]:
    """The leaf messages of an exception (task groups wrap transport errors in ExceptionGroups)."""
    if isinstance(exc, BaseExceptionGroup):
        return [m for e in exc.exceptions for m in describe(e)]
    return [f"{type(exc).__name__}: {exc}"]


async def list_all(fetch, field: str) -> list:
    items, cursor = [], None
    for _ in range(100):
        page = await fetch(cursor=cursor)
        items += getattr(page, field)
        cursor = page.next_cursor
        if not cursor:
            return items
    raise RuntimeError("the server kept returning a nextCursor after 100 pages")


async def swap_token(url: str, token: str, session_id: str | None, version: str, timeout: float) -> dict:
    """POST tools/list in the established session but under another bearer token."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    request = {"jsonrpc": "2.0", "id": "swap", "method": "tools/list", "params": {}}
    async with httpx2.AsyncClient(timeout=timeout) as http:
        response = await http.post(url, headers=headers, json=request)
    return {"status": response.status_code, "body": response.text}


async def run(args: argparse.Namespace, plan: dict) -> dict:
    out: dict = {"server": None, "session_id": None}
    http_errors: list[str] = []  # every HTTP response >= 400, for connect_error

    async def on_response(response: httpx2.Response) -> None:
        if session_id := response.headers.get("mcp-session-id"):
            out["session_id"] = session_id
        if response.status_code >= 400:
            await response.aread()  # the transport only reads JSON bodies; this one is cached
            http_errors.append(f"HTTP {response.status_code} {response.reason_phrase}: {response.text}")

    async with AsyncExitStack() as stack:
        try:
            if args.transport == "stdio":
                params = StdioServerParameters(command=args.command[0], args=args.command[1:], env=dict(os.environ))
                transport = stdio_client(params)
            else:
                headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=headers, timeout=args.timeout, event_hooks={"response": [on_response]})
                )
                transport = streamable_http_client(args.url, http_client=http)
            # cache=None: every list/read must reach the server.
            client = Client(transport, mode=args.mode, cache=None, read_timeout_seconds=args.timeout)
            await stack.enter_async_context(client)
        except Exception as e:  # noqa: BLE001 - any failure to connect is the test's to judge
            return {"connect_error": "; ".join(http_errors + describe(e))}

        info = client.server_info
        out["server"] = {
            "name": info.name if info else None,
            "version": info.version if info else None,
            "protocolVersion": client.protocol_version,
        }
        if args.transport == "http" and args.session_token_swap:
            out["swap"] = await swap_token(
                args.url, args.session_token_swap, out["session_id"], client.protocol_version, args.timeout
            )

        out["list_errors"] = {}
        listings = [
            ("tools/list", "tools", client.list_tools, "tools"),
            ("resources/list", "resources", client.list_resources, "resources"),
            ("resources/templates/list", "resource_templates", client.list_resource_templates, "resource_templates"),
        ]
        for method, key, fetch, field in listings:
            try:
                out[key] = await list_all(fetch, field)
            except REQUEST_ERRORS as e:
                out[key], out["list_errors"][method] = [], str(e)
        out["tools"] = [
            {"name": t.name, "description": t.description, "inputSchema": t.input_schema,
             "outputSchema": t.output_schema}
            for t in out["tools"]
        ]
        out["resources"] = [{"uri": str(r.uri), "name": r.name, "mimeType": r.mime_type} for r in out["resources"]]
        out["resource_templates"] = [
            {"uriTemplate": t.uri_template, "name": t.name} for t in out["resource_templates"]
        ]

        out["results"] = []
        for call in plan.get("calls", []):
            try:
                r = await client.call_tool(call["tool"], call.get("arguments"))
            except REQUEST_ERRORS as e:
                code = e.code if isinstance(e, MCPError) else None
                out["results"].append({"tool": call["tool"], "protocol_error": str(e), "code": code})
                continue
            out["results"].append({
                "tool": call["tool"],
                "isError": r.is_error,
                "structuredContent": r.structured_content,
                "text": "".join(c.text for c in r.content if isinstance(c, TextContent)),
            })

        out["reads"] = []
        for uri in plan.get("resources", []):
            try:
                r = await client.read_resource(uri)
            except REQUEST_ERRORS as e:
                out["reads"].append({"uri": uri, "error": str(e)})
                continue
            out["reads"].append({
                "uri": uri,
                "mimeType": r.contents[0].mime_type if r.contents else None,
                "text": "".join(c.text for c in r.contents if isinstance(c, TextResourceContents)),
            })
    return out


def main() -> None:
    args = parse_args()
    plan = json.loads(sys.stdin.read().strip() or "{}")
    print(json.dumps(anyio.run(run, args, plan)))


if __name__ == "__main__":
    main()
