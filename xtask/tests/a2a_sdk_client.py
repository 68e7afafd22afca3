"""Drives the gateway's A2A 1.0 interface with the official Python SDK (a2a-sdk 1.x).

Run by xtask/tests/a2a_v1.rs as `python a2a_sdk_client.py BASE_URL`; prints one JSON
object with what the SDK saw, which the Rust test checks. Any exception fails the run
(non-zero exit, traceback on stderr).

Besides the SDK's own (lenient) parsing, every raw answer is parsed strictly into the
protocol's proto types (json_format.ParseDict without ignore_unknown_fields), so an
unknown field or a misspelt enum value fails here instead of silently becoming a default.
"""

import asyncio
import json
import sys
import uuid

import httpx
from google.protobuf import json_format

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.helpers import get_data_parts, get_text_parts, new_data_message
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Role,
    SendMessageRequest,
    SendMessageResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError, TaskNotCancelableError, TaskNotFoundError

SEED = {
    "tenantId": "TENANT_001",
    "purpose": "investigation",
    "residency": "US",
    "pqid": "pq.getPersonById",
    "agent": "code-refactor",
    "task": {"repo": "svc-api", "goal": "add pagination"},
}


async def send(client, request):
    message = new_data_message(request, media_type="application/json", role=Role.ROLE_USER)
    tasks = [event.task async for event in client.send_message(SendMessageRequest(message=message))]
    assert len(tasks) == 1, f"want one task, got {len(tasks)}"
    return tasks[0]


def summary(task):
    return {
        "id": task.id,
        "contextId": task.context_id,
        "state": TaskState.Name(task.status.state),
        "artifactData": [d for a in task.artifacts for d in get_data_parts(a.parts)],
        "statusText": get_text_parts(task.status.message.parts),
        "statusData": get_data_parts(task.status.message.parts),
        "history": len(task.history),
    }


async def strict_checks(base, card_url, interface_url):
    """Raw answers parsed strictly into the proto types."""
    async with httpx.AsyncClient() as http:
        card = (await http.get(card_url)).json()
        json_format.ParseDict(card, AgentCard())
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": str(uuid.uuid4()),
                    "role": "ROLE_USER",
                    "parts": [{"data": dict(SEED, residency="EU")}],
                }
            },
        }
        headers = {"A2A-Version": "1.0"}
        answer = (await http.post(interface_url, json=body, headers=headers)).json()
        json_format.ParseDict(answer["result"], SendMessageResponse())
        body["params"]["message"]["messageId"] = str(uuid.uuid4())
        body["params"]["message"]["parts"][0]["data"] = SEED
        answer = (await http.post(interface_url, json=body, headers=headers)).json()
        completed = json_format.ParseDict(answer["result"], SendMessageResponse())
        get = {"jsonrpc": "2.0", "id": "g", "method": "GetTask", "params": {"id": completed.task.id}}
        answer = (await http.post(interface_url, json=get, headers=headers)).json()
        json_format.ParseDict(answer["result"], Task())
        listing = {"jsonrpc": "2.0", "id": "l", "method": "ListTasks", "params": {"includeArtifacts": True}}
        answer = (await http.post(interface_url, json=listing, headers=headers)).json()
        listed = json_format.ParseDict(answer["result"], ListTasksResponse())
        assert len(listed.tasks) >= 2, listed
    return True


async def main(base):
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, base).get_agent_card()
    interface = card.supported_interfaces[0]
    client = ClientFactory(ClientConfig(streaming=False)).create(card)
    try:
        allowed = await send(client, SEED)
        denied = await send(client, dict(SEED, residency="EU"))
        read_back = await client.get_task(GetTaskRequest(id=allowed.id, history_length=0))
        listed = await client.list_tasks(ListTasksRequest(page_size=1))
        errors = {}
        for name, call in [
            ("getUnknown", client.get_task(GetTaskRequest(id="no-such-task"))),
            ("cancelFinished", client.cancel_task(CancelTaskRequest(id=allowed.id))),
        ]:
            try:
                await call
                errors[name] = None
            except (TaskNotFoundError, TaskNotCancelableError) as e:
                errors[name] = type(e).__name__
            except (A2AError, A2AClientError) as e:
                errors[name] = f"unexpected {type(e).__name__}: {e}"
    finally:
        await client.close()
    strict = await strict_checks(base, base.rstrip("/") + "/.well-known/agent-card.json", interface.url)
    print(
        json.dumps(
            {
                "card": {
                    "name": card.name,
                    "url": interface.url,
                    "protocolBinding": interface.protocol_binding,
                    "protocolVersion": interface.protocol_version,
                    "streaming": card.capabilities.streaming,
                    "skills": [s.id for s in card.skills],
                },
                "allowed": summary(allowed),
                "denied": summary(denied),
                "readBack": summary(read_back),
                "listed": {"count": len(listed.tasks), "pageSize": listed.page_size,
                           "totalSize": listed.total_size, "more": listed.next_page_token != ""},
                "errors": errors,
                "strict": strict,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
