"""The site side: the reference agent, the city simulator and certificates. Imports nothing of the controller."""
