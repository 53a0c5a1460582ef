"""Issue 17, must-show 4 (and the review's Azure finding): a Customer Insights-shaped export on Azurite,
announced by an Event Grid ``Microsoft.Storage.BlobCreated`` CloudEvent POSTed to the ingress, starts the
run of the segment whose ``az://`` trigger matches; the run reads the ``model.json`` snapshot (issue 16's
CDM reader) and the list is exact. Real parts: Azurite, the ingress over HTTP, RabbitMQ, a worker process
and the ActiveCampaign simulator."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import free_port
from tests.e2e.conftest import RabbitBroker, Sim, write_config
from tests.run.test_azure_runs import ROOT, export_cdm
from worker.contacts.samples import make_segment
from worker.events.envelopes import now_iso
from worker.service.ingress import Ingress
from worker.settings import load_config

TOKEN = "azure-trigger-token-" + "5e6f7a" * 4


def blob_created(account: str, container: str, path: str, sequencer: str) -> dict[str, Any]:
    """What Event Grid sends (CloudEvents schema) when a blob is written on the storage account."""
    return {"specversion": "1.0", "id": f"evg-{sequencer}", "type": "Microsoft.Storage.BlobCreated",
            "source": f"/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/{account}",
            "subject": f"/blobServices/default/containers/{container}/blobs/{path}", "time": now_iso(),
            "data": {"api": "PutBlob", "url": f"https://{account}.blob.core.windows.net/{container}/{path}",
                     "eTag": "0x8DC0FFEE", "sequencer": sequencer, "contentType": "application/json"}}


async def test_a_blob_created_cloudevent_posted_to_the_ingress_syncs_the_cdm_export(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, az_container: str, azurite: str,
        workers: Callable[..., Any]) -> None:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azurite).get_container_client(az_container)
    seg = make_segment(range(300), seed=16)
    snapshot = export_cdm(container, seg.profiles, "2026-11-28")
    config = write_config(tmp_path, sim, rabbit)
    config.write_text(config.read_text().replace(f'snapshot_prefixes = ["file://{tmp_path}/"]',
                                                 f'snapshot_prefixes = ["az://{az_container}/"]')
                      + f'\n[segments.vip-customers]\ntriggers = ["az://{az_container}/CustomerInsights_*/*/model.json"]\n'
                      + '\n[ingress]\ntokens_env = "AZURE_TRIGGER_TOKENS"\n')
    worker = workers(config)  # inherits the Azurite connection string az_container set

    os.environ["AZURE_TRIGGER_TOKENS"] = TOKEN
    try:
        ingress = Ingress(load_config(str(config)))
    finally:
        del os.environ["AZURE_TRIGGER_TOKENS"]
    port = free_port()
    await ingress.start("127.0.0.1", port)
    try:
        account = container.account_name
        unrelated = blob_created(account, az_container, f"{ROOT}Vip/2026-11-28/Vip_1.csv", "0001")
        marker = blob_created(account, az_container, f"{ROOT}model.json", "0002")
        async with aiohttp.ClientSession() as http:
            for event in (unrelated, marker, marker):  # Event Grid delivers at least once
                async with http.post(f"http://127.0.0.1:{port}/events", data=orjson.dumps(event),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/cloudevents+json"}) as r:
                    assert r.status == 202, await r.text()
    finally:
        await ingress.stop()

    (done,) = rabbit.wait_completions(1, 120, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert done["status"] == "succeeded" and done["refresh_id"].startswith("object-"), done
    assert len(rabbit.completions()) == 1 and rabbit.read_dead() == []  # the duplicate is the same run
    sim.assert_list_exact(3, seg.expected)
    assert snapshot in worker.text()  # the run read model.json itself, in the trigger's az:// form
    assert "matches no segment's triggers" in worker.text()  # the partition file: acked, started nothing
