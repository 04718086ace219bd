# emergency_rollback.py
from routing import FeatureFlags

def emergency_rollback():
    """Immediately disable RouteLLM integration."""
    
    flags = FeatureFlags()
    
    # Disable all RouteLLM features
    flags.disable(FeatureFlags.ROUTELLM_ENABLED)
    
    # Disable domain-specific routing
    for domain in ["MEDICAL", "LEGAL", "TECHNICAL", "CREATIVE", "SCIENTIFIC"]:
        flag_name = f"ROUTELLM_{domain}_DOMAIN"
        if hasattr(FeatureFlags, flag_name):
            flags.disable(getattr(FeatureFlags, flag_name))
    
    print("Emergency rollback completed. RouteLLM disabled.")
    print("Current flags:", flags.get_all_flags())

if __name__ == "__main__":
    emergency_rollback()
