"""A router service adopting Routeplane, end to end, against a local fake model server.

Run from the repository root: `python examples/routellm_integration_example.py`. It starts the
fake OpenAI-compatible server from tests/fakemodel.py on loopback (no real provider is called),
routes 20 prompts with RouteLLM's `random` router through `DomainRouter.acompletion`, records a
quality score for each answer, makes one strong-model outage that the fallback absorbs, and
prints the savings report. Set ROUTEPLANE_URL and ROUTEPLANE_API_KEY to send everything to a
control plane instead of keeping it in memory (docs/routellm_integration.md).
"""

import asyncio
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENAI_API_KEY", "dummy-key-for-the-fake-server")

from routing import CostTracker, DomainRouter, FeatureFlags, RouteLLMConfig, RouterType  # noqa: E402
from tests.fakemodel import FakeModelServer  # noqa: E402


async def main(fake: FakeModelServer) -> None:
    config = RouteLLMConfig(
        enabled=True,
        router_type=RouterType.RANDOM,  # needs no checkpoint; use "mf" in production
        threshold=0.5,
        max_retry_attempts=1,
        timeout_seconds=5.0,
    )
    flags = FeatureFlags()
    if not flags.is_remote:  # remote flags are set by operators on the control plane
        flags.enable(FeatureFlags.ROUTELLM_ENABLED)
    tracker = CostTracker()
    router = DomainRouter(config, flags=flags, tracker=tracker, api_base=fake.api_base)

    random.seed(7)
    for i in range(20):
        if i == 10:
            fake.fail(config.strong_model, 500, times=2)  # a short provider outage
        messages = [{"role": "user", "content": f"Fix the bug in function number {i}"}]
        response = await router.acompletion(messages)
        decision = response.routeplane
        # The caller's own judgement of the answer (a grader, a thumbs up/down...).
        decision.record_outcome(quality=1.0 if decision.tier == "strong" else 0.8)
        print(f"{i:2d} {decision.model:20s} fallback={decision.fallback_used}")

    report = tracker.get_cost_savings_report(period_days=1)
    print(f"requests:          {report.total_requests}")
    print(f"actual cost:       ${report.actual_cost:.6f}")
    print(f"baseline cost:     ${report.baseline_cost:.6f}")
    print(f"estimated savings: ${report.estimated_savings:.6f} ({report.savings_percent:.1f} %)")
    print(f"success rate:      {report.success_rate:.2f}")
    print(f"fallback rate:     {report.fallback_rate:.2f}")
    print(f"average quality:   {report.average_quality:.2f} ({report.quality_samples} samples)")
    tracker.close()


if __name__ == "__main__":
    with FakeModelServer() as server:
        asyncio.run(main(server))
