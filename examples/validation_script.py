# validation_script.py
import asyncio
from routing import (
    RouteLLMConfig, FeatureFlags, CostTracker
)

async def validate_migration():
    """Comprehensive migration validation."""
    
    validation_results = {
        "passed": [],
        "failed": [],
        "warnings": []
    }
    
    # Test 1: Configuration
    try:
        config = RouteLLMConfig()
        validation_results["passed"].append("Configuration initialization")
    except Exception as e:
        validation_results["failed"].append(f"Configuration: {e}")
    
    # Test 2: Feature Flags
    try:
        flags = FeatureFlags()
        flags.enable(FeatureFlags.ROUTELLM_COST_TRACKING)
        assert flags.is_enabled(FeatureFlags.ROUTELLM_COST_TRACKING)
        validation_results["passed"].append("Feature flags system")
    except Exception as e:
        validation_results["failed"].append(f"Feature flags: {e}")
    
    # Test 3: Cost Tracking
    try:
        tracker = CostTracker()
        tracker_id = tracker.track_routing_decision(
            text="test query",
            domains=["test"],
            routing_method="test",
            selected_model="test-model",
            estimated_cost=0.001
        )
        assert tracker_id
        validation_results["passed"].append("Cost tracking")
    except Exception as e:
        validation_results["failed"].append(f"Cost tracking: {e}")
    
    # Display results
    print("Migration Validation Results:")
    print("=" * 40)
    
    if validation_results["passed"]:
        print("✓ PASSED:")
        for test in validation_results["passed"]:
            print(f"  ✓ {test}")
    
    if validation_results["failed"]:
        print("\n❌ FAILED:")
        for test in validation_results["failed"]:
            print(f"  ❌ {test}")
    
    if validation_results["warnings"]:
        print("\n⚠️  WARNINGS:")
        for warning in validation_results["warnings"]:
            print(f"  ⚠️  {warning}")
    
    success = len(validation_results["failed"]) == 0
    print(f"\nOverall: {'✓ SUCCESS' if success else '❌ FAILED'}")
    return success

if __name__ == "__main__":
    asyncio.run(validate_migration())
