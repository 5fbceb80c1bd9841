"""An A2A 1.0 client made only of the official Python SDK (a2a-sdk 1.3.0), to prove that
`tam serve`'s agent card and A2A endpoint work with it: resolve the card, authenticate with the
card's bearer scheme, send one task as a data part, read the Task back.

Usage: a2a_client.py BASE_URL TOKEN < task.json

Prints one JSON object on stdout:
  {"card": {...}, "task": {"id", "context_id", "state", "artifacts": [data part objects], "status_text"}}
or, when the agent answers with an A2A (JSON-RPC) error, {"card": {...}, "error": {"code", "message"}}.
Exits non-zero, saying why on stderr, on anything else: a card the SDK does not accept (bad JSON
or REQUIRED fields missing), a card that does not make the SDK send the bearer token, an HTTP
error (such as 401), a reply that is not a Task.
"""

import asyncio
import json
import re
import sys

import httpx
from a2a.client import (
    A2ACardResolver,
    A2AClientError,
    AgentCardResolutionError,
    AuthInterceptor,
    ClientCallContext,
    ClientCallInterceptor,
    ClientConfig,
    ClientFactory,
    InMemoryContextCredentialStore,
)
from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_message
from a2a.types.a2a_pb2 import Role, SendMessageRequest, TaskState
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError, InvalidParamsError
from a2a.utils.proto_utils import validate_proto_required_fields

SESSION = "tam-test"


class RequireBearer(ClientCallInterceptor):
    """Runs after AuthInterceptor: refuses to send a call that carries no bearer token."""

    async def before(self, args):
        params = (args.context and args.context.service_parameters) or {}
        if not params.get("Authorization", "").startswith("Bearer "):
            sys.exit("a2a_client: the SDK would send no bearer token: the card's securityRequirements "
                     "name no HTTP bearer scheme of its securitySchemes")

    async def after(self, args):
        pass


def whole(value):
    """google.protobuf.Value keeps every number as a double: give whole ones back as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole(v) for v in value]
    return value


async def main(base_url, token, task):
    async with httpx.AsyncClient(timeout=120) as http:
        try:
            card = await A2ACardResolver(http, base_url).get_agent_card()
            validate_proto_required_fields(card)  # ParseDict alone would accept a card missing them
        except AgentCardResolutionError as e:
            sys.exit(f"a2a_client: card not accepted: {e}")
        except InvalidParamsError as e:
            sys.exit(f"a2a_client: card lacks REQUIRED fields: {e.data}")
        schemes = card.security_schemes
        bearer = [name for req in card.security_requirements for name in req.schemes
                  if name in schemes and schemes[name].http_auth_security_scheme.scheme.lower() == "bearer"]
        summary = {"name": card.name, "version": card.version, "skills": [s.id for s in card.skills],
                   "bearer_schemes": bearer, "streaming": card.capabilities.streaming,
                   "interfaces": [[i.protocol_binding, i.protocol_version, i.url] for i in card.supported_interfaces]}

        credentials = InMemoryContextCredentialStore()
        for name in card.security_schemes:
            await credentials.set_credentials(SESSION, name, token)
        client = ClientFactory(ClientConfig(httpx_client=http)).create(
            card, interceptors=[AuthInterceptor(credentials), RequireBearer()])
        message = new_message([new_data_part(task, media_type="application/json")], role=Role.ROLE_USER)
        context = ClientCallContext(state={"sessionId": SESSION})
        try:
            responses = [r async for r in client.send_message(SendMessageRequest(message=message), context=context)]
        except A2AClientError as e:  # transport trouble; an unmapped JSON-RPC code also lands here
            m = re.match(r"JSON-RPC Error (-?\d+): (.*)", e.message, re.S)
            if not m:
                raise
            return {"card": summary, "error": {"code": int(m[1]), "message": m[2]}}
        except A2AError as e:  # a JSON-RPC error the SDK maps to its own class
            return {"card": summary, "error": {"code": JSON_RPC_ERROR_CODE_MAP[type(e)], "message": e.message}}
        finally:
            await client.close()
    if len(responses) != 1 or not responses[-1].HasField("task"):
        sys.exit(f"a2a_client: expected one Task, got {responses}")
    t = responses[-1].task
    return {"card": summary, "task": {
        "id": t.id, "context_id": t.context_id, "state": TaskState.Name(t.status.state),
        "artifacts": [whole(d) for a in t.artifacts for d in get_data_parts(a.parts)],
        "status_text": "\n".join(get_text_parts(t.status.message.parts)),
    }}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: a2a_client.py BASE_URL TOKEN < task.json")
    try:
        task = json.load(sys.stdin)
    except ValueError as e:
        sys.exit(f"a2a_client: stdin is not JSON: {e}")
    try:
        print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], task))))
    except A2AClientError as e:
        sys.exit(f"a2a_client: {e}")
