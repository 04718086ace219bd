# assessment_script.py
from routing import RouteLLMConfig, FeatureFlags
import logging

def assess_current_setup():
    """Assess current setup compatibility with RouteLLM integration."""
    assessment = {
        "compatible": True,
        "warnings": [],
        "errors": []
    }
    
    # Check configuration
    try:
        config = RouteLLMConfig()
        print(f"✓ RouteLLMConfig can be instantiated")
    except Exception as e:
        assessment["errors"].append(f"Configuration error: {e}")
        assessment["compatible"] = False
    
    # Check feature flags
    try:
        flags = FeatureFlags()
        print(f"✓ Feature flags system available")
    except Exception as e:
        assessment["errors"].append(f"Feature flags error: {e}")
        assessment["compatible"] = False
    
    return assessment

if __name__ == "__main__":
    result = assess_current_setup()
    print(f"\nAssessment: {'✓ Compatible' if result['compatible'] else '✗ Issues found'}")
    for warning in result["warnings"]:
        print(f"⚠️  {warning}")
    for error in result["errors"]:
        print(f"❌ {error}")
