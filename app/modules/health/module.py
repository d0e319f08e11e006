from app.core.module import Module
from app.modules.health.controller import HealthController

health_module = Module(name="health", controllers=[HealthController])
