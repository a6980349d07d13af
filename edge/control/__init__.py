"""What the ground station sends to the node (the control plane): pushed rules."""
