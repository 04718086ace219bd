# monitoring_example.py
from routing import CostTracker
import asyncio

async def monitor_routellm_performance():
    """Monitor RouteLLM performance and generate reports."""
    
    tracker = CostTracker()
    
    # Get daily report
    daily_report = tracker.get_cost_savings_report(period_days=1)
    print(f"Daily Report:")
    print(f"  Total requests: {daily_report.total_requests}")
    print(f"  RouteLLM requests: {daily_report.routellm_requests}")
    print(f"  Estimated savings: ${daily_report.estimated_savings:.2f}")
    print(f"  Success rate: {daily_report.success_rate:.2%}")
    
    # Get metrics summary
    summary = tracker.get_metrics_summary()
    print(f"\nMetrics Summary:")
    print(f"  Success rate: {summary['success_rate']:.2%}")
    print(f"  RouteLLM usage: {summary['routellm_usage_rate']:.2%}")
    print(f"  Average cost: ${summary['average_cost']:.4f}")
    print(f"  Average latency: {summary['average_latency_ms']:.1f}ms")
    
    return daily_report

if __name__ == "__main__":
    asyncio.run(monitor_routellm_performance())
